DROP TABLE client_grants;
