//! Discovery: authorization-server metadata (RFC 8414) at every well-known form, and
//! what a mistyped path answers.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn metadata_advertises_what_is_implemented() {
    let app = TestApp::spawn().await;
    let m = body_json(app.http.get(app.as_metadata_url()).send().await.unwrap()).await;
    assert_eq!(
        m["issuer"], app.base,
        "issuer must be the exact string clients use"
    );
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!([
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    // The machine and enterprise grants (MCP extensions: client credentials,
    // enterprise-managed authorization), token exchange (RFC 8693: another mcpgate in
    // front), and what signs their assertions and proofs.
    assert_eq!(
        m["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        m["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );
    for list in [
        "token_endpoint_auth_signing_alg_values_supported",
        "dpop_signing_alg_values_supported",
    ] {
        let algs = m[list].as_array().unwrap();
        assert!(algs.contains(&json!("ES256")), "{list}: {algs:?}");
        assert!(
            !algs.iter().any(|a| a.as_str().unwrap().starts_with("HS")),
            "{list}"
        );
    }
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    for ep in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "jwks_uri",
    ] {
        assert!(m[ep].as_str().unwrap().starts_with(&app.base), "{ep}");
    }
    let jwks = body_json(
        app.http
            .get(m["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private key material"
    );
}

/// RFC 8414 §3.1 and OpenID Connect Discovery §4: every well-known URL a client may
/// derive from the issuer answers the same document, whose `issuer` is the exact
/// string (MCP "Authorization Server Metadata Discovery").
#[tokio::test]
async fn metadata_at_every_well_known_form() {
    let app = TestApp::spawn().await;
    let forms = [
        app.as_metadata_url(),
        app.well_known("openid-configuration", ""),
        app.url("/.well-known/openid-configuration"),
    ];
    let mut docs = Vec::new();
    for url in &forms {
        let r = app.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let doc = body_json(r).await;
        assert_eq!(doc["issuer"], app.base, "{url}");
        assert_eq!(doc["token_endpoint"], app.url("/token"), "{url}");
        docs.push(doc);
    }
    assert!(docs.windows(2).all(|w| w[0] == w[1]), "one document");
}

/// A mistyped URL under the authorization server says what exists, as JSON for
/// programs and as a page for browsers, instead of an empty 404.
#[tokio::test]
async fn unknown_paths_say_what_exists() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/oauth/2.1/introspect"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body = body_json(r).await;
    assert_eq!(body["error"], "not_found");
    let urls: Vec<&str> = body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    for want in [
        app.url("/introspect"),
        app.url("/token"),
        app.mcp_url(),
        app.as_metadata_url(),
    ] {
        assert!(urls.contains(&want.as_str()), "{want} in {urls:?}");
    }
    let page = app
        .http
        .get(app.url("/nothing<script>"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains(&app.url("/introspect")), "{html}");
    assert!(!html.contains("<script>"), "the path is escaped");
    assert!(
        html.contains(&format!(r#"href="{}/assets/style.css""#, app.path())),
        "the page's own links follow the base path"
    );
}
