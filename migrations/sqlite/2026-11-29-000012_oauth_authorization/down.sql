DROP INDEX token_families_user_client;
DROP TABLE web_sessions;
DROP TABLE oauth_consents;
DROP TABLE oauth_codes;
