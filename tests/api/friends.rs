//! The friend graph: requests, friendships, blocks, caps and finding people.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Session, TestApp, error_code, error_fields};
use crate::on_both_backends;

on_both_backends!(
    a_request_accepted_makes_friends_both_ways,
    asking_someone_who_asked_you_makes_friends_at_once,
    decline_cancel_and_unfriend_undo_each_step,
    requests_that_cannot_be_are_refused_with_the_right_status,
    blocking_ends_everything_and_hides_both_ways,
    caps_on_friends_and_pending_requests_hold,
    lists_page_with_cursors_that_cannot_be_forged,
    people_are_found_by_username_or_display_name,
);

async fn call(app: &TestApp, method: Method, path: &str, who: &Session) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(&who.access_token)
        .send()
        .await
        .unwrap()
}

async fn ask(app: &TestApp, from: &Session, to: &Session) -> reqwest::Response {
    app.client
        .post(app.url("/v1/me/friend-requests"))
        .bearer_auth(&from.access_token)
        .json(&json!({"user_id": to.user_id}))
        .send()
        .await
        .unwrap()
}

async fn accept(app: &TestApp, me: &Session, from: &Session) -> StatusCode {
    let path = format!("/v1/me/friend-requests/{}/accept", from.user_id);
    call(app, Method::POST, &path, me).await.status()
}

/// The user ids on one page of a list.
async fn ids(app: &TestApp, path: &str, who: &Session) -> Vec<String> {
    let page = app.get_json(path, &who.access_token).await;
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: {page}"))
        .iter()
        .map(|item| item["user"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn make_friends(app: &TestApp, a: &Session, b: &Session) {
    assert_eq!(ask(app, a, b).await.status(), StatusCode::CREATED);
    assert_eq!(accept(app, b, a).await, StatusCode::NO_CONTENT);
}

async fn a_request_accepted_makes_friends_both_ways(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ada, bob) = (app.register("ada").await, app.register("bob").await);
    let response = ask(&app, &ada, &bob).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["user"]["id"], bob.user_id.as_str());
    // Asking again changes nothing.
    let again = ask(&app, &ada, &bob).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "pending");

    assert_eq!(
        ids(&app, "/v1/me/friend-requests?direction=outgoing", &ada).await,
        [bob.user_id.as_str()]
    );
    assert_eq!(
        ids(&app, "/v1/me/friend-requests", &bob).await,
        [ada.user_id.as_str()]
    );
    assert!(
        ids(&app, "/v1/me/friend-requests?direction=incoming", &ada)
            .await
            .is_empty()
    );

    assert_eq!(accept(&app, &bob, &ada).await, StatusCode::NO_CONTENT);
    assert_eq!(
        ids(&app, "/v1/me/friends", &ada).await,
        [bob.user_id.as_str()]
    );
    assert_eq!(
        ids(&app, "/v1/me/friends", &bob).await,
        [ada.user_id.as_str()]
    );
    let friends = app.get_json("/v1/me/friends", &bob.access_token).await;
    assert_eq!(friends["items"][0]["user"]["username"], "ada");
    assert!(
        friends["items"][0]["since"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(friends["next_cursor"], Value::Null);
    // The requests are gone; asking a friend says so.
    assert!(ids(&app, "/v1/me/friend-requests", &bob).await.is_empty());
    let response = ask(&app, &bob, &ada).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "friends");
}

async fn asking_someone_who_asked_you_makes_friends_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ada, bob) = (app.register("ada").await, app.register("bob").await);
    assert_eq!(ask(&app, &ada, &bob).await.status(), StatusCode::CREATED);
    let response = ask(&app, &bob, &ada).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "friends");
    assert_eq!(
        ids(&app, "/v1/me/friends", &ada).await,
        [bob.user_id.as_str()]
    );
    assert!(
        ids(&app, "/v1/me/friend-requests?direction=outgoing", &ada)
            .await
            .is_empty()
    );
}

async fn decline_cancel_and_unfriend_undo_each_step(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ada, bob) = (app.register("ada").await, app.register("bob").await);
    ask(&app, &ada, &bob).await;
    let decline = format!("/v1/me/friend-requests/{}/decline", ada.user_id);
    assert_eq!(
        call(&app, Method::POST, &decline, &bob).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(
        ids(&app, "/v1/me/friend-requests?direction=outgoing", &ada)
            .await
            .is_empty()
    );
    assert_eq!(
        call(&app, Method::POST, &decline, &bob).await.status(),
        StatusCode::NOT_FOUND
    );

    ask(&app, &ada, &bob).await;
    let cancel = format!("/v1/me/friend-requests/{}", bob.user_id);
    assert_eq!(
        call(&app, Method::DELETE, &cancel, &ada).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(ids(&app, "/v1/me/friend-requests", &bob).await.is_empty());
    assert_eq!(
        call(&app, Method::DELETE, &cancel, &ada).await.status(),
        StatusCode::NOT_FOUND
    );

    make_friends(&app, &ada, &bob).await;
    let unfriend = format!("/v1/me/friends/{}", ada.user_id);
    assert_eq!(
        call(&app, Method::DELETE, &unfriend, &bob).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(ids(&app, "/v1/me/friends", &ada).await.is_empty());
    assert!(ids(&app, "/v1/me/friends", &bob).await.is_empty());
    assert_eq!(
        call(&app, Method::DELETE, &unfriend, &bob).await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn requests_that_cannot_be_are_refused_with_the_right_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ada, bob, cyd) = (
        app.register("ada").await,
        app.register("bob").await,
        app.register("cyd").await,
    );
    // Oneself.
    let (status, code, body) = error_code(ask(&app, &ada, &ada).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    assert_eq!(error_fields(&body), ["user_id"]);
    // Nobody, and not an id at all.
    let ghost = "usr_0000000000001";
    let response = app
        .client
        .post(app.url("/v1/me/friend-requests"))
        .bearer_auth(&ada.access_token)
        .json(&json!({"user_id": ghost}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .client
        .post(app.url("/v1/me/friend-requests"))
        .bearer_auth(&ada.access_token)
        .json(&json!({"user_id": "ada"}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = error_code(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), ["user_id"]);
    // Accepting a request that was addressed to someone else.
    ask(&app, &ada, &bob).await;
    assert_eq!(accept(&app, &cyd, &ada).await, StatusCode::NOT_FOUND);
    assert_eq!(
        accept(&app, &ada, &bob).await,
        StatusCode::NOT_FOUND,
        "the sender cannot accept"
    );
    assert!(ids(&app, "/v1/me/friends", &ada).await.is_empty());
    // Reading needs friends:read, writing friends:write; a bad direction is named.
    let (status, _, body) = error_code(
        call(
            &app,
            Method::GET,
            "/v1/me/friend-requests?direction=sideways",
            &ada,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&body), ["direction"]);
    let response = app
        .client
        .get(app.url("/v1/me/friends"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn blocking_ends_everything_and_hides_both_ways(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ada, bob, cyd) = (
        app.register("ada").await,
        app.register("bob").await,
        app.register("cyd").await,
    );
    make_friends(&app, &ada, &bob).await;
    ask(&app, &cyd, &ada).await;
    let block_bob = format!("/v1/me/blocks/{}", bob.user_id);
    assert_eq!(
        call(&app, Method::PUT, &block_bob, &ada).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, Method::PUT, &block_bob, &ada).await.status(),
        StatusCode::NO_CONTENT,
        "idempotent"
    );
    let block_cyd = format!("/v1/me/blocks/{}", cyd.user_id);
    assert_eq!(
        call(&app, Method::PUT, &block_cyd, &ada).await.status(),
        StatusCode::NO_CONTENT
    );

    // The friendship and the pending request are gone, on both sides.
    assert!(ids(&app, "/v1/me/friends", &ada).await.is_empty());
    assert!(ids(&app, "/v1/me/friends", &bob).await.is_empty());
    assert!(ids(&app, "/v1/me/friend-requests", &ada).await.is_empty());
    assert!(
        ids(&app, "/v1/me/friend-requests?direction=outgoing", &cyd)
            .await
            .is_empty()
    );
    assert_eq!(
        ids(&app, "/v1/me/blocks", &ada).await,
        [cyd.user_id.as_str(), bob.user_id.as_str()]
    );
    assert!(
        ids(&app, "/v1/me/blocks", &bob).await.is_empty(),
        "a block is the blocker's alone to see"
    );

    // Each is hidden from the other: profile, search, requests.
    for (viewer, hidden) in [(&bob, &ada), (&ada, &bob)] {
        let path = format!("/v1/users/{}", hidden.user_id);
        assert_eq!(
            call(&app, Method::GET, &path, viewer).await.status(),
            StatusCode::NOT_FOUND
        );
        let username = if hidden.user_id == ada.user_id {
            "ada"
        } else {
            "bob"
        };
        let page = app
            .get_json(
                &format!("/v1/users/search?q={username}"),
                &viewer.access_token,
            )
            .await;
        assert_eq!(page["items"], json!([]), "{page}");
    }
    let (status, _, _) = error_code(ask(&app, &bob, &ada).await).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the blocked person cannot tell a block from nobody"
    );
    let (status, code, _) = error_code(ask(&app, &ada, &bob).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "blocked"));
    // Cyd, blocked too, still sees other people.
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/v1/users/{}", bob.user_id),
            &cyd
        )
        .await
        .status(),
        StatusCode::OK
    );

    // Unblocking restores visibility, not the friendship.
    assert_eq!(
        call(&app, Method::DELETE, &block_bob, &ada).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, Method::DELETE, &block_bob, &ada).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/v1/users/{}", ada.user_id),
            &bob
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert!(ids(&app, "/v1/me/friends", &ada).await.is_empty());
    assert_eq!(ask(&app, &bob, &ada).await.status(), StatusCode::CREATED);
    // Blocking oneself is refused.
    let own = format!("/v1/me/blocks/{}", ada.user_id);
    assert_eq!(
        call(&app, Method::PUT, &own, &ada).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

async fn caps_on_friends_and_pending_requests_hold(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.social_limits.friends = 2;
        config.social_limits.pending_requests = 2;
    })
    .await;
    let ada = app.register("ada").await;
    let mut others = Vec::new();
    for name in ["bob", "cyd", "dee", "eve"] {
        others.push(app.register(name).await);
    }
    // Two pending requests are the most.
    assert_eq!(
        ask(&app, &ada, &others[0]).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        ask(&app, &ada, &others[1]).await.status(),
        StatusCode::CREATED
    );
    let (status, code, _) = error_code(ask(&app, &ada, &others[2]).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "request_limit_reached")
    );
    // Two friends are the most: the third acceptance is refused and changes nothing.
    assert_eq!(accept(&app, &others[0], &ada).await, StatusCode::NO_CONTENT);
    assert_eq!(accept(&app, &others[1], &ada).await, StatusCode::NO_CONTENT);
    assert_eq!(
        ask(&app, &others[2], &ada).await.status(),
        StatusCode::CREATED
    );
    let path = format!("/v1/me/friend-requests/{}/accept", others[2].user_id);
    let (status, code, _) = error_code(call(&app, Method::POST, &path, &ada).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "friend_limit_reached")
    );
    assert_eq!(ids(&app, "/v1/me/friends", &ada).await.len(), 2);
    assert_eq!(
        ids(&app, "/v1/me/friend-requests", &ada).await,
        [others[2].user_id.as_str()]
    );
    // Someone with a full inbox cannot be flooded.
    assert_eq!(
        ask(&app, &others[3], &ada).await.status(),
        StatusCode::CREATED
    );
    let fay = app.register("fay").await;
    let (status, code, _) = error_code(ask(&app, &fay, &ada).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "request_limit_reached")
    );
}

async fn lists_page_with_cursors_that_cannot_be_forged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let mut expected = Vec::new();
    for i in 0..5 {
        let friend = app.register(&format!("friend{i}")).await;
        make_friends(&app, &ada, &friend).await;
        expected.insert(0, friend.user_id.clone());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/me/friends?limit=2".to_owned();
    loop {
        let page = app.get_json(&path, &ada.access_token).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|i| i["user"]["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/me/friends?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, expected, "newest friendship first, each once");

    let page = app
        .get_json("/v1/me/friends?limit=2", &ada.access_token)
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    // Another person's list, another list, a tampered cursor, a bad limit: all refused.
    let other = app.register("zed").await;
    for (who, path) in [
        (&other, format!("/v1/me/friends?cursor={cursor}")),
        (&ada, format!("/v1/me/blocks?cursor={cursor}")),
        (&ada, format!("/v1/me/friends?cursor=x{cursor}")),
        (&ada, "/v1/me/friends?limit=0".to_owned()),
        (&ada, "/v1/me/friends?limit=101".to_owned()),
        (&ada, "/v1/me/friends?page=2".to_owned()),
    ] {
        let (status, _, body) = error_code(call(&app, Method::GET, &path, who).await).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {body}"
        );
        assert_eq!(error_fields(&body).len(), 1, "{path}: {body}");
    }
}

async fn people_are_found_by_username_or_display_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let me = app.register("searcher").await;
    for (username, display) in [
        ("ada_l", "Ada Lovelace"),
        ("adam", "Adam Smith"),
        ("grace", "Grace Hopper"),
        ("lovelace2", "Not Ada"),
        ("percent", "100% Real"),
    ] {
        let response = app
            .post_json(
                "/v1/auth/register",
                &json!({"username": username, "email": format!("{username}@example.com"),
                    "password": "correct horse battery staple", "display_name": display}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let usernames = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let search = |q: &str| format!("/v1/users/search?q={q}");
    // Username prefix, display-name prefix, a word of the display name; any case; by username.
    assert_eq!(
        usernames(&app.get_json(&search("ADA"), &me.access_token).await),
        ["ada_l", "adam", "lovelace2"]
    );
    assert_eq!(
        usernames(&app.get_json(&search("hopper"), &me.access_token).await),
        ["grace"]
    );
    assert_eq!(
        usernames(&app.get_json(&search("love"), &me.access_token).await),
        ["ada_l", "lovelace2"]
    );
    // LIKE's wildcards are plain characters.
    assert_eq!(
        usernames(&app.get_json(&search("100%25"), &me.access_token).await),
        ["percent"]
    );
    assert_eq!(
        usernames(&app.get_json(&search("a_"), &me.access_token).await),
        Vec::<String>::new()
    );
    assert!(usernames(&app.get_json(&search("%25"), &me.access_token).await).is_empty());
    // Paging.
    let first = app
        .get_json("/v1/users/search?q=a&limit=1", &me.access_token)
        .await;
    assert_eq!(usernames(&first), ["ada_l"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_json(
            &format!("/v1/users/search?q=a&limit=1&cursor={cursor}"),
            &me.access_token,
        )
        .await;
    assert_eq!(usernames(&second), ["adam"]);
    // Bad input names the parameter.
    for (query, status) in [
        ("", StatusCode::UNPROCESSABLE_ENTITY),
        ("?q=", StatusCode::UNPROCESSABLE_ENTITY),
        (
            &format!("?q={}", "a".repeat(51)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("?q=a&q=b", StatusCode::BAD_REQUEST),
        ("?q=a&limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        (&format!("?q=b&cursor={cursor}"), StatusCode::BAD_REQUEST),
    ] {
        let (got, _, body) =
            error_code(call(&app, Method::GET, &format!("/v1/users/search{query}"), &me).await)
                .await;
        assert_eq!(got, status, "{query}: {body}");
        assert_eq!(error_fields(&body).len(), 1, "{query}: {body}");
    }
}
