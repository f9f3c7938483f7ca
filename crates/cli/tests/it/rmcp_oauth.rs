//! The official Rust SDK's OAuth client (rmcp `auth`) through the whole flow:
//! discovery from the 401, dynamic registration, authorization with PKCE and the
//! resource indicator, the person's sign-in and consent, the code exchange (with the
//! RFC 9207 `iss` check), then tool calls with the token it manages.

use rmcp::{
    ClientHandler, ServiceExt,
    model::CallToolRequestParams,
    transport::{
        StreamableHttpClientTransport,
        auth::{AuthClient, AuthorizationRequest, OAuthState},
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::json;

use crate::support::{Browser, PASSWORD, REDIRECT, TestApp};

#[derive(Clone, Default)]
struct Client;
impl ClientHandler for Client {}

fn call(op: &str) -> CallToolRequestParams {
    CallToolRequestParams::new("calculator").with_arguments(
        json!({"operation": op, "a": 5, "b": 8})
            .as_object()
            .unwrap()
            .clone(),
    )
}

#[tokio::test]
async fn rmcp_oauth_client_completes_the_flow_and_calls_the_calculator() {
    let app = TestApp::spawn().await;
    let mut state = OAuthState::new(app.mcp_url(), None).await.unwrap();
    let mut request = AuthorizationRequest::new(REDIRECT);
    request.client_name = Some("rmcp test client".into());
    request.scopes = vec!["op:add".into(), "op:sub".into()];
    state.start_authorization(request).await.unwrap();
    let auth_url = state.get_authorization_url().await.unwrap();
    let q: std::collections::HashMap<_, _> = url::Url::parse(&auth_url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["resource"], app.mcp_url(), "RFC 8707 resource");
    assert_eq!(q["code_challenge_method"], "S256");

    let mut browser = Browser::new(&app);
    browser.login("alice", PASSWORD).await;
    let r = browser.get(&auth_url).await;
    let consent = crate::support::location(&r);
    let callback = browser.consent(&consent, None).await;
    assert!(callback.starts_with(REDIRECT));
    state.handle_callback_url(&callback).await.unwrap();

    let manager = state.into_authorization_manager().unwrap();
    let transport = StreamableHttpClientTransport::with_client(
        AuthClient::new(reqwest::Client::new(), manager),
        StreamableHttpClientTransportConfig::with_uri(app.mcp_url()),
    );
    let client = Client.serve(transport).await.unwrap();
    let r = client.call_tool(call("add")).await.unwrap();
    assert_eq!(r.structured_content, Some(json!({"result": 13.0})));
    let r = client.call_tool(call("subtract")).await.unwrap();
    assert_eq!(r.structured_content, Some(json!({"result": -3.0})));
    assert!(
        client.call_tool(call("divide")).await.is_err(),
        "op:div was not granted: 403"
    );
}
