//! Serving a router until told to stop, the one way production and the tests both do:
//! stop accepting, let the requests in flight finish for a bounded time, then end what
//! is still open.

use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `router` on `listener` until `stop` is cancelled; then stops accepting, lets
/// the requests in flight finish for at most `grace`, and cancels `app` (which ends
/// long-lived streams and upstream sessions), in that order: an in-flight call is
/// not cut short by the shutdown, and a stream held open does not hold it forever.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    app: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let signal = stop.clone();
    // Connection info gives the rate limits their source address.
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { signal.cancelled().await });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        r = &mut server => {
            app.cancel();
            return r;
        }
        _ = stop.cancelled() => {}
    }
    let drained = tokio::time::timeout(grace, &mut server).await;
    app.cancel();
    match drained {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(
                ?grace,
                "requests still in flight at the end of the shutdown grace; ending them"
            );
            // The streams the token ends close at once; anything else is cut.
            let _ = tokio::time::timeout(Duration::from_millis(250), server).await;
            Ok(())
        }
    }
}

/// A token cancelled at the first SIGINT or SIGTERM.
pub fn on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let signal = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new connections; requests in flight may finish");
        signal.cancel();
    });
    stop
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
