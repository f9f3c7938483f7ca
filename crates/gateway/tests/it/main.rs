//! Integration tests of the gateway's forwarding to a Streamable HTTP upstream: a real
//! upstream on a loopback port, the gateway's router driven without a socket.
//! One test binary: each module is a concern.

mod forward;
