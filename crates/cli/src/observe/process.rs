//! What the process itself uses, read from `/proc` when `/metrics` is scraped (never
//! on a request's path): resident memory, open file descriptors, and the TCP
//! connections open on the public listener.

use std::net::SocketAddr;

/// Resident set size in bytes (`/proc/self/statm`, second field, in pages).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The page size: 4 KiB on every platform mcpgate is built for with `/proc`.
fn page_size() -> u64 {
    4096
}

/// Open file descriptors (entries of `/proc/self/fd`).
pub fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// Established TCP connections whose local end is `listen`'s port: the connections
/// clients hold open to the public listener (outbound connections have other local
/// ports). Read from `/proc/net/tcp` and `/proc/net/tcp6`.
pub fn open_connections(listen: SocketAddr) -> Option<u64> {
    let port = format!("{:04X}", listen.port());
    let mut n = 0;
    let mut read_any = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        read_any = true;
        n += text
            .lines()
            .skip(1)
            .filter(|line| {
                let mut f = line.split_whitespace();
                let local = f.nth(1).unwrap_or_default();
                let state = f.nth(1).unwrap_or_default();
                // State 01 is ESTABLISHED (include/net/tcp_states.h).
                state == "01" && local.rsplit(':').next() == Some(port.as_str())
            })
            .count() as u64;
    }
    read_any.then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_memory_and_descriptors() {
        assert!(resident_bytes().unwrap() > 1024 * 1024);
        assert!(open_fds().unwrap() >= 3);
    }

    #[tokio::test]
    async fn counts_connections_to_a_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let before = open_connections(addr).unwrap();
        let _c1 = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _c2 = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (_s1, _) = listener.accept().await.unwrap();
        let (_s2, _) = listener.accept().await.unwrap();
        assert_eq!(open_connections(addr).unwrap(), before + 2);
    }
}
