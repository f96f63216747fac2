//! Opening the listener to the office network ("Point your devices here"):
//! the config change behind the assistant's consent button, decided here so
//! the shell only adapts. Postern listens on every IPv4 address of the PC
//! (`0.0.0.0`) on the ports it already uses, and the office subnet joins
//! `listener.allow`. Only a network this PC is itself on can be added that
//! way: a click never turns Postern into an open relay for the internet.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;

use super::{Config, ListenerConfig};

/// The port a device should use: the first plain (STARTTLS) listen address,
/// preferring one that is not loopback-only; 0 when there is none.
pub fn device_port(l: &ListenerConfig) -> u16 {
    l.listen
        .iter()
        .find(|a| !a.ip().is_loopback())
        .or_else(|| l.listen.first())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Whether devices on other machines can reach the listener at all: some
/// listen address (plain or TLS) is not loopback.
pub fn listens_beyond_loopback(l: &ListenerConfig) -> bool {
    l.listen
        .iter()
        .chain(&l.tls_listen)
        .any(|a| !a.ip().is_loopback())
}

/// `config` with the listener open to `network`: loopback-only addresses
/// become `0.0.0.0` on the same port (an IPv4 address already on that port is
/// replaced, as the wildcard covers it), and `network` is added to
/// `listener.allow` unless a network there already covers it.
///
/// `own` are the networks of this PC's interfaces; `network` must be one of
/// them (or inside one). The error is a plain sentence.
pub fn open_to_lan(config: &Config, network: &str, own: &[IpNet]) -> Result<Config, String> {
    let net: IpNet = network
        .trim()
        .parse()
        .map_err(|_| format!("{network:?} is not a network; expected one like 192.168.1.0/24"))?;
    let net = net.trunc();
    if net.prefix_len() == 0 || !own.iter().any(|o| o.trunc().contains(&net)) {
        let mine: Vec<String> = own.iter().map(|o| o.trunc().to_string()).collect();
        return Err(format!(
            "{net} is not a network this PC is on ({}); Postern only opens to the office network it shares with the devices",
            if mine.is_empty() {
                "it has no network besides loopback".to_string()
            } else {
                format!("its networks: {}", mine.join(", "))
            }
        ));
    }
    let mut out = config.clone();
    let l = &mut out.listener;
    l.listen = widen(&l.listen);
    l.tls_listen = widen(&l.tls_listen);
    if l.listen.is_empty() && l.tls_listen.is_empty() {
        l.listen = vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, 2525))];
    }
    if !l.allow.iter().any(|a| a.contains(&net)) {
        l.allow.push(net);
    }
    Ok(out)
}

/// Each port with a loopback address gets `0.0.0.0:port` instead of its
/// IPv4 addresses; a port already on the IPv4 or dual-stack wildcard is left
/// as it is. Order is kept; IPv6 addresses other than the wildcard stay.
fn widen(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let wildcard = |port: u16| {
        addrs
            .iter()
            .any(|a| a.port() == port && a.ip().is_unspecified())
    };
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in addrs {
        let port = a.port();
        let opens = !wildcard(port)
            && addrs
                .iter()
                .any(|b| b.port() == port && b.ip().is_loopback());
        let next = match a.ip() {
            IpAddr::V4(_) if opens => SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
            _ => *a,
        };
        if !out.contains(&next) {
            out.push(next);
        }
    }
    // A port that was only on IPv6 loopback still needs the IPv4 wildcard.
    for a in addrs {
        let w = SocketAddr::from((Ipv4Addr::UNSPECIFIED, a.port()));
        if a.ip().is_loopback() && !wildcard(a.port()) && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Vec<IpNet> {
        vec![
            "192.168.1.23/24".parse().unwrap(),
            "10.0.5.2/16".parse().unwrap(),
        ]
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn opens_the_default_listener_to_an_own_network() {
        let c = open_to_lan(&Config::default(), "192.168.1.0/24", &own()).unwrap();
        assert_eq!(c.listener.listen, addrs(&["0.0.0.0:2525"]));
        assert!(c.listener.tls_listen.is_empty());
        let allow: Vec<String> = c.listener.allow.iter().map(|a| a.to_string()).collect();
        assert_eq!(allow, ["127.0.0.0/8", "::1/128", "192.168.1.0/24"]);
        assert!(listens_beyond_loopback(&c.listener));
        assert!(!listens_beyond_loopback(&Config::default().listener));
        assert_eq!(device_port(&c.listener), 2525);
        // Twice is the same as once.
        assert_eq!(open_to_lan(&c, "192.168.1.0/24", &own()).unwrap(), c);
    }

    #[test]
    fn a_host_address_or_a_narrower_subnet_counts_as_its_network() {
        let c = open_to_lan(&Config::default(), "192.168.1.23/24", &own()).unwrap();
        assert!(c
            .listener
            .allow
            .contains(&"192.168.1.0/24".parse().unwrap()));
        let c = open_to_lan(&Config::default(), "10.0.5.0/24", &own()).unwrap();
        assert!(c.listener.allow.contains(&"10.0.5.0/24".parse().unwrap()));
    }

    #[test]
    fn refuses_networks_this_pc_is_not_on() {
        for bad in [
            "0.0.0.0/0",
            "::/0",
            "192.168.2.0/24",
            "10.0.0.0/8",
            "8.8.8.0/24",
        ] {
            let e = open_to_lan(&Config::default(), bad, &own()).unwrap_err();
            assert!(e.contains("not a network this PC is on"), "{bad}: {e}");
            assert!(e.contains("192.168.1.0/24, 10.0.0.0/16"), "{e}");
        }
        let e = open_to_lan(&Config::default(), "10.0.0.0/16", &[]).unwrap_err();
        assert!(e.contains("no network besides loopback"), "{e}");
        let e = open_to_lan(&Config::default(), "office", &own()).unwrap_err();
        assert!(e.contains("not a network"), "{e}");
    }

    #[test]
    fn keeps_ports_and_replaces_only_what_the_wildcard_covers() {
        let mut c = Config::default();
        c.listener.listen = addrs(&[
            "127.0.0.1:25",
            "192.168.1.23:25",
            "[::1]:25",
            "127.0.0.1:587",
        ]);
        c.listener.tls_listen = addrs(&["127.0.0.1:465"]);
        let c = open_to_lan(&c, "192.168.1.0/24", &own()).unwrap();
        assert_eq!(
            c.listener.listen,
            addrs(&["0.0.0.0:25", "[::1]:25", "0.0.0.0:587"])
        );
        assert_eq!(c.listener.tls_listen, addrs(&["0.0.0.0:465"]));
        assert_eq!(device_port(&c.listener), 25);

        // Already on the dual-stack wildcard, or on a LAN address only: kept.
        let mut d = Config::default();
        d.listener.listen = addrs(&["[::]:2525", "127.0.0.1:2525", "192.168.1.23:2600"]);
        let d2 = open_to_lan(&d, "192.168.1.0/24", &own()).unwrap();
        assert_eq!(d2.listener.listen, d.listener.listen);
    }

    #[test]
    fn a_network_already_allowed_is_not_added_twice() {
        let mut c = Config::default();
        c.listener.allow.push("192.168.0.0/16".parse().unwrap());
        let n = c.listener.allow.len();
        let c = open_to_lan(&c, "192.168.1.0/24", &own()).unwrap();
        assert_eq!(c.listener.allow.len(), n);
    }
}
