//! One whole authorization flow over real HTTP, the way an MCP client walks it: sign-in,
//! consent, code, token, a calculator call, step-up, refresh and revocation.

use crate::support::*;

#[tokio::test]
async fn full_flow_then_calculator_then_step_up_refresh_and_revocation() {
    let app = TestApp::spawn().await;
    let (client_id, tok) = app.tokens(Some(&["op:add", "op:sub"])).await;
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["scope"], "op:add op:sub", "the person granted a subset");
    let access = tok["access_token"].as_str().unwrap();
    let r = app.calc_as(access, "add", 5.0, 8.0).send().await.unwrap();
    assert_eq!(
        body_json(r).await["result"]["structuredContent"]["result"],
        13.0
    );
    let r = app
        .calc_as(access, "divide", 1.0, 2.0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // refresh rotates
    let refresh = tok["refresh_token"].as_str().unwrap();
    let r = app.refresh(&client_id, refresh, None).await;
    assert_eq!(r.status(), 200);
    let tok2 = body_json(r).await;
    assert_ne!(tok2["refresh_token"], tok["refresh_token"]);
    let access2 = tok2["access_token"].as_str().unwrap();
    assert_eq!(app.calc_status(access2, "subtract", 5.0, 8.0).await, 200);
    // revoke the refresh token: its family's access tokens stop working at once
    let r = app
        .http
        .post(app.url("/revoke"))
        .form(&[
            ("token", tok2["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.calc_status(access2, "add", 1.0, 1.0).await, 401);
    assert_eq!(app.calc_status(access, "add", 1.0, 1.0).await, 401);
    let (s, e) = token_error(
        app.refresh(&client_id, tok2["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
}
