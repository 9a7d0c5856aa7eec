//! Diesel's view of the tables in `migrations/` (identical on both backends).

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        username_key -> Text,
        email -> Text,
        email_key -> Text,
        display_name -> Text,
        bio -> Text,
        location_precision -> Text,
        default_visibility -> Text,
        is_admin -> Bool,
        suspended_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        display_name_key -> Text,
    }
}

diesel::table! {
    credentials (user_id) {
        user_id -> BigInt,
        password_hash -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    token_families (id) {
        id -> BigInt,
        user_id -> BigInt,
        client_id -> Text,
        scope -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> BigInt,
        family_id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    friend_requests (from_user_id, to_user_id) {
        from_user_id -> BigInt,
        to_user_id -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    friendships (user_id, friend_id) {
        user_id -> BigInt,
        friend_id -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    blocks (blocker_id, blocked_id) {
        blocker_id -> BigInt,
        blocked_id -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    categories (id) {
        id -> Text,
        parent_id -> Nullable<Text>,
        name -> Text,
    }
}

diesel::table! {
    venues (id) {
        id -> BigInt,
        name -> Text,
        name_key -> Text,
        category_id -> Text,
        lat -> Double,
        lng -> Double,
        cell -> BigInt,
        address -> Nullable<Text>,
        locality -> Nullable<Text>,
        region -> Nullable<Text>,
        postal_code -> Nullable<Text>,
        country_code -> Nullable<Text>,
        phone -> Nullable<Text>,
        url -> Nullable<Text>,
        created_by -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    checkins (id) {
        id -> BigInt,
        user_id -> BigInt,
        venue_id -> BigInt,
        lat -> Double,
        lng -> Double,
        accuracy_m -> Nullable<Double>,
        shout -> Nullable<Text>,
        visibility -> Text,
        created_at -> BigInt,
        received_at -> BigInt,
    }
}

diesel::table! {
    presence (user_id) {
        user_id -> BigInt,
        lat -> Double,
        lng -> Double,
        accuracy_m -> Nullable<Double>,
        cell -> BigInt,
        venue_id -> Nullable<BigInt>,
        checkin_id -> Nullable<BigInt>,
        updated_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> BigInt,
        key -> Text,
        request_hash -> Text,
        status -> Integer,
        response -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    location_access (subject_id, viewer_id, via, day) {
        subject_id -> BigInt,
        viewer_id -> BigInt,
        via -> Text,
        day -> BigInt,
        precision -> Text,
        views -> BigInt,
        last_at -> BigInt,
    }
}

diesel::joinable!(credentials -> users (user_id));
diesel::joinable!(token_families -> users (user_id));
diesel::table! {
    changes (seq) {
        seq -> BigInt,
        payload -> Text,
        created_at -> BigInt,
        subject -> Nullable<BigInt>,
    }
}

diesel::table! {
    oauth_clients (client_id) {
        client_id -> Text,
        name -> Text,
        client_type -> Text,
        secret_hash -> Nullable<Text>,
        redirect_uris -> Text,
        scopes -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    oauth_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> BigInt,
        redirect_uri -> Nullable<Text>,
        scope -> Text,
        code_challenge -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        family_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    oauth_consents (user_id, client_id) {
        user_id -> BigInt,
        client_id -> Text,
        scope -> Text,
        granted_at -> BigInt,
    }
}

diesel::table! {
    web_sessions (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    client_grants (id) {
        id -> BigInt,
        client_id -> Text,
        scope -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webhooks (client_id) {
        client_id -> Text,
        url -> Text,
        secret -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        client_id -> Text,
        event -> Text,
        payload -> Text,
        created_at -> BigInt,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::joinable!(webhooks -> oauth_clients (client_id));
diesel::joinable!(oauth_codes -> users (user_id));
diesel::joinable!(oauth_consents -> oauth_clients (client_id));
diesel::joinable!(web_sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> token_families (family_id));
diesel::joinable!(venues -> categories (category_id));
diesel::joinable!(checkins -> venues (venue_id));
diesel::joinable!(presence -> users (user_id));

diesel::table! {
    checkin_slots (slot, shard) {
        slot -> BigInt,
        shard -> Integer,
        checkins -> BigInt,
    }
}

diesel::table! {
    user_activity (user_id) {
        user_id -> BigInt,
        last_checkin_at -> BigInt,
    }
}

diesel::table! {
    checkin_cells (day, cell, shard) {
        day -> BigInt,
        cell -> BigInt,
        shard -> Integer,
        checkins -> BigInt,
        visitors0 -> BigInt,
        visitors1 -> BigInt,
        visitors2 -> BigInt,
        visitors3 -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    checkin_cells,
    checkin_slots,
    user_activity,
    users,
    credentials,
    token_families,
    refresh_tokens,
    friend_requests,
    friendships,
    blocks,
    categories,
    venues,
    checkins,
    presence,
    idempotency_keys,
    location_access,
    changes,
    oauth_clients,
    oauth_codes,
    oauth_consents,
    web_sessions,
    client_grants,
    webhooks,
    webhook_deliveries,
);
