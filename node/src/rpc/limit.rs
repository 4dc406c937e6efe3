//! Each client's allowance of submitted transactions (`rpc.client_txs_per_second`).
//!
//! Every transaction a client submits costs the node a signature check before anything
//! else can be said of it, and checks are shared by all: without a limit, one client
//! sending forgeries as fast as its link allows would hold every resident's transaction
//! behind its own. A client is its IP address (for IPv6, its /64: one host can pick any
//! address of its network). Each may submit `rpc.client_txs_per_second` transactions a
//! second, in bursts of up to two seconds' worth (at least a whole batch,
//! [`SUBMIT_BATCH_MAX`]); more are refused with 429 `rate_limited` before they are
//! decoded, saying when to try again. A batch costs one per transaction it carries.
//!
//! Behind a reverse proxy every client has the proxy's address: limit there, and raise
//! or turn off (0) this one.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    time::Duration,
};

use axum::{
    extract::{connect_info::Connected, ConnectInfo, FromRequestParts},
    http::{request::Parts, StatusCode},
    serve::IncomingStream,
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{chain::SUBMIT_BATCH_MAX, guard::GuardedListener, ApiError};

/// The address a connection came from, as the API's listener saw it.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, GuardedListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, GuardedListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// The client a request came from: its IP address (IPv6 cut to its /64), or `None` when
/// the API is served without addresses (a router called in process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Client(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<ClientAddr>>()
                .map(|ConnectInfo(ClientAddr(a))| network_of(a.ip())),
        ))
    }
}

/// The key a client is counted under: an IPv4 address whole, an IPv6 address's first 64
/// bits (an IPv4 address mapped into IPv6 as the IPv4 address).
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// The clients' allowances; `None` inside when the limit is off.
#[derive(Debug)]
pub struct Submissions {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_second: u32,
}

impl Submissions {
    /// `per_second` transactions a second per client; 0 for no limit.
    pub fn new(per_second: u32) -> Submissions {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = per_second
                .saturating_mul(2)
                .max(u32::try_from(SUBMIT_BATCH_MAX).unwrap_or(u32::MAX));
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Submissions {
            limiter,
            per_second,
        }
    }

    /// Takes `txs` transactions from the client's allowance, or refuses the request
    /// (429 `rate_limited`, with when to try again) and takes nothing.
    pub fn charge(&self, client: Client, txs: usize) -> Result<(), ApiError> {
        let (Some(limiter), Client(Some(ip))) = (&self.limiter, client) else {
            return Ok(());
        };
        let Some(n) = u32::try_from(txs).ok().and_then(NonZeroU32::new) else {
            return Ok(());
        };
        let wait = match limiter.check_key_n(&ip, n) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => not_until.wait_time_from(limiter_now()),
            // More than a whole burst: no wait makes it fit (a batch is at most one).
            Err(_) => Duration::from_secs(1),
        };
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this client may submit {} transactions a second; try again in {} ms",
                self.per_second,
                wait.as_millis().max(1)
            ),
        )
        .retry_after(wait))
    }

    /// Forgets the clients whose allowance is whole again (called now and then, so that
    /// the table holds only recent clients).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Clients with an allowance not yet whole.
    pub fn clients(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

fn limiter_now() -> <governor::clock::DefaultClock as Clock>::Instant {
    governor::clock::DefaultClock::default().now()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(ip: &str) -> Client {
        Client(Some(network_of(ip.parse().unwrap())))
    }

    #[test]
    fn a_client_past_its_allowance_is_refused_and_others_are_not() {
        let s = Submissions::new(100);
        // A burst of two seconds' worth, at least a batch: 1,024 at once pass.
        s.charge(from("10.0.0.1"), 1024).unwrap();
        let e = s.charge(from("10.0.0.1"), 1000).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.body.code, "rate_limited");
        assert!(e.body.retry_after_ms.is_some_and(|ms| ms > 0), "{e:?}");
        // Another client's allowance is its own.
        s.charge(from("10.0.0.2"), 1024).unwrap();
        // Hosts of one IPv6 /64 share one allowance; another /64 has its own.
        s.charge(from("2001:db8:1:2::1"), 1024).unwrap();
        assert!(s.charge(from("2001:db8:1:2:ffff::9"), 1000).is_err());
        s.charge(from("2001:db8:1:3::1"), 1000).unwrap();
        // An IPv4 address mapped into IPv6 is that IPv4 client.
        assert!(s.charge(from("::ffff:10.0.0.1"), 1000).is_err());
        // A request without an address, or with no transaction, is not counted.
        s.charge(Client(None), 1_000_000).unwrap();
        s.charge(from("10.0.0.1"), 0).unwrap();
        assert_eq!(s.clients(), 4);
    }

    #[test]
    fn no_limit_when_turned_off() {
        let s = Submissions::new(0);
        for _ in 0..100 {
            s.charge(from("10.0.0.1"), 1024).unwrap();
        }
        assert_eq!(s.clients(), 0);
    }
}
