//! Tests of the device card and of opening the listener to the LAN: the
//! addresses are this machine's real ones (as `ip -o -4 addr` lists them),
//! and a network that is not the PC's own is refused with nothing changed.

use std::sync::atomic::{AtomicUsize, Ordering};

use postern_engine::config::Config;

use super::*;
use crate::test_support::{counting, shell_in};

/// `(interface, address, network)` of each global-scope IPv4 address, from
/// iproute2 (`ip -o -4 addr`), computed without Postern's code.
#[cfg(target_os = "linux")]
fn ip_addr() -> Vec<LanAddress> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .expect("ip (iproute2) runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut list: Vec<LanAddress> = text
        .lines()
        .filter(|l| l.contains(" scope global "))
        .map(|l| {
            // "4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0 ..."
            let words: Vec<&str> = l.split_whitespace().collect();
            let cidr = words[words.iter().position(|w| *w == "inet").unwrap() + 1];
            let (address, prefix) = cidr.split_once('/').unwrap();
            let prefix: u32 = prefix.parse().unwrap();
            let ip: u32 = address.parse::<std::net::Ipv4Addr>().unwrap().into();
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            let network = format!("{}/{prefix}", std::net::Ipv4Addr::from(ip & mask));
            LanAddress {
                interface: words[1].trim_end_matches(':').to_string(),
                address: address.to_string(),
                network,
            }
        })
        .collect();
    list.sort();
    list
}

#[cfg(target_os = "linux")]
#[test]
fn the_card_lists_this_machines_real_addresses() {
    let ours = addresses().unwrap();
    assert_eq!(ours, ip_addr());
    assert!(ours.iter().all(|a| !a.address.starts_with("127.")));
    let card = card(&Config::default(), ours.clone());
    assert_eq!(card.addresses, ours);
}

#[test]
fn the_card_says_how_to_set_up_the_device() {
    let text = "[listener]\nlisten = [\"0.0.0.0:25\"]\ntls_listen = [\"0.0.0.0:465\"]\nallow = [\"192.168.1.0/24\"]\nrequire_auth = true\nusers = [\"scanner\"]\nhostname = \"frontdesk\"\n";
    let config = Config::parse(text, std::path::Path::new("p.toml")).unwrap();
    let addresses = vec![LanAddress {
        interface: "eth0".into(),
        address: "192.168.1.23".into(),
        network: "192.168.1.0/24".into(),
    }];
    let c = card(&config, addresses);
    assert_eq!(
        serde_json::to_value(&c).unwrap(),
        serde_json::json!({
            "addresses": [{"interface": "eth0", "address": "192.168.1.23", "network": "192.168.1.0/24"}],
            "port": 25, "lan": true, "starttls": true, "tls_ports": [465],
            "login_needed": true, "users": ["scanner"], "allow": ["192.168.1.0/24"],
            "hostname": "frontdesk",
        })
    );
    let d = card(&Config::default(), vec![]);
    assert_eq!((d.port, d.lan, d.login_needed), (2525, false, false));
    assert_eq!(d.hostname, postern_engine::engine::host_name());
}

#[tokio::test]
async fn listen_on_lan_refuses_a_foreign_network_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[upstream]\nmailbox = \"scanner@contoso.com\"\n";
    let shell = shell_in(dir.path(), Some(text));
    let setup = Setup::new(false);
    let restarts = AtomicUsize::new(0);
    let own: Vec<IpNet> = vec!["192.168.1.0/24".parse().unwrap()];
    for foreign in ["0.0.0.0/0", "10.1.0.0/16", "192.168.0.0/16", "nonsense"] {
        let r = open(&shell, &setup, foreign, &own, counting(&restarts))
            .await
            .unwrap();
        assert!(!r.ok && !r.restarted, "{foreign}: {r:?}");
        assert_eq!(r.errors[0].key, "listener.allow");
        assert!(r.errors[0].message.contains("not a network"), "{r:?}");
    }
    assert_eq!(restarts.load(Ordering::SeqCst), 0);
    assert_eq!(std::fs::read_to_string(&shell.config_path).unwrap(), text);
}

#[tokio::test]
async fn listen_on_lan_opens_the_port_and_the_subnet_and_saves_minimal() {
    let dir = tempfile::tempdir().unwrap();
    let shell = shell_in(
        dir.path(),
        Some("[listener]\nlisten = [\"127.0.0.1:2600\"]\n"),
    );
    let setup = Setup::new(false);
    let restarts = AtomicUsize::new(0);
    let own: Vec<IpNet> = vec!["192.168.1.0/24".parse().unwrap()];
    let r = open(&shell, &setup, "192.168.1.0/24", &own, counting(&restarts))
        .await
        .unwrap();
    assert_eq!(
        r,
        LanReply {
            ok: true,
            errors: vec![],
            restarted: true
        }
    );
    assert_eq!(restarts.load(Ordering::SeqCst), 1);
    let file = std::fs::read_to_string(&shell.config_path).unwrap();
    let table: toml::Table = file.parse().unwrap();
    assert_eq!(
        table,
        toml::toml! {
            [listener]
            listen = ["0.0.0.0:2600"]
            allow = ["127.0.0.0/8", "::1/128", "192.168.1.0/24"]
        },
        "{file}"
    );
    let c = shell.config.read().await.clone();
    assert_eq!(c, Config::parse(&file, &shell.config_path).unwrap());
    assert!(card(&c, vec![]).lan);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn listen_on_lan_with_this_machines_network_starts_the_engine_on_it() {
    let Some(net) = ip_addr().first().map(|a| a.network.clone()) else {
        eprintln!("this machine has no network besides loopback: nothing to open");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[listener]\nlisten = [\"127.0.0.1:0\"]\n\n[spool]\ndir = {:?}\n",
        dir.path().join("spool")
    );
    let shell = shell_in(dir.path(), Some(&text));
    let setup = Setup::new(false);
    let own = networks(&addresses().unwrap());
    let restart = || async { shell.start().await.map(|_| ()) };
    let r = open(&shell, &setup, &net, &own, restart).await.unwrap();
    assert!(r.ok && r.restarted, "{r:?}");
    let listening = shell.listening().await;
    assert!(
        listening.iter().all(|a| a.ip().is_unspecified()) && !listening.is_empty(),
        "{listening:?}"
    );
    assert!(shell
        .config
        .read()
        .await
        .listener
        .allow
        .contains(&net.parse().unwrap()));
    shell.stop().await;
}
