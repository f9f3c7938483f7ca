//! Integration tests of the gateway: forwarding to a Streamable HTTP upstream (a real
//! upstream on a loopback port) and the stdio pool (a real process), the gateway's
//! router driven without a socket. One test binary: each module is a concern.

mod fails_closed;
mod forward;
mod people;
mod pool;
