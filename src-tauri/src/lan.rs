//! "Point your devices here" (docs/ipc.md, "Setup assistant and secrets"):
//! the card a scanner's settings page needs — this PC's real addresses on
//! the office network, the port, the security choice, whether a login is
//! needed — and, with the admin's consent, opening the listener to one of
//! those networks (`postern_engine::config::lan` decides the change).
//!
//! Addresses are IPv4 (what office devices are set up with, and what
//! `0.0.0.0` opens), without loopback and link-local (169.254.x.x) ones.

use ipnet::{IpNet, Ipv4Net};
use postern_engine::config::lan::{device_port, listens_beyond_loopback, open_to_lan};
use postern_engine::config::Config;
use serde::Serialize;
use tauri::{AppHandle, Runtime, State};

use crate::settings::{self, FieldError};
use crate::setup::Setup;
use crate::shell::Shell;

/// One address of this PC and the network it is on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord, ts_rs::TS)]
#[ts(rename = "DeviceAddress")]
pub struct LanAddress {
    pub interface: String,
    pub address: String,
    /// The interface's network in CIDR form, e.g. 192.168.1.0/24.
    pub network: String,
}

/// `get_device_card`.
#[derive(Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct DeviceCard {
    pub addresses: Vec<LanAddress>,
    pub port: u16,
    /// Listening on a non-loopback address (devices can reach it).
    pub lan: bool,
    /// STARTTLS is offered on the plain port.
    pub starttls: bool,
    /// Implicit-TLS ("SSL/TLS", port 465 style) ports.
    pub tls_ports: Vec<u16>,
    /// `listener.require_auth`.
    pub login_needed: bool,
    pub users: Vec<String>,
    pub allow: Vec<String>,
    /// The name devices can use instead of an address.
    pub hostname: String,
}

/// `listen_on_lan`, shaped like `save_settings`'s answer.
#[derive(Debug, Serialize, PartialEq, ts_rs::TS)]
#[ts(rename = "ListenOnLan")]
pub struct LanReply {
    pub ok: bool,
    pub errors: Vec<FieldError>,
    pub restarted: bool,
}

/// This PC's non-loopback IPv4 addresses, sorted by interface.
pub fn addresses() -> Result<Vec<LanAddress>, String> {
    let interfaces = if_addrs::get_if_addrs()
        .map_err(|e| format!("cannot list this PC's network interfaces: {e}"))?;
    let mut out: Vec<LanAddress> = interfaces
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) if !v4.ip.is_loopback() && !v4.ip.is_link_local() => {
                let net = Ipv4Net::with_netmask(v4.ip, v4.netmask).ok()?.trunc();
                Some(LanAddress {
                    interface: i.name,
                    address: v4.ip.to_string(),
                    network: net.to_string(),
                })
            }
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The networks of `addresses`, for `open_to_lan`.
pub fn networks(addresses: &[LanAddress]) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = addresses
        .iter()
        .filter_map(|a| a.network.parse().ok())
        .collect();
    nets.dedup();
    nets
}

/// The card for a config and this PC's addresses.
pub fn card(config: &Config, addresses: Vec<LanAddress>) -> DeviceCard {
    let l = &config.listener;
    let mut tls_ports: Vec<u16> = l.tls_listen.iter().map(|a| a.port()).collect();
    tls_ports.sort_unstable();
    tls_ports.dedup();
    DeviceCard {
        addresses,
        port: device_port(l),
        lan: listens_beyond_loopback(l),
        starttls: !l.listen.is_empty(),
        tls_ports,
        login_needed: l.require_auth,
        users: l.users.clone(),
        allow: l.allow.iter().map(|n| n.to_string()).collect(),
        hostname: l
            .hostname
            .clone()
            .unwrap_or_else(postern_engine::engine::host_name),
    }
}

/// Opens the listener to `network` (one of `own`) and saves and applies
/// the config. A network that is not this PC's is refused as a field
/// error on `listener.allow`, with nothing changed.
pub async fn open<F, Fut>(
    shell: &Shell,
    setup: &Setup,
    network: &str,
    own: &[IpNet],
    restart: F,
) -> Result<LanReply, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let _edit = setup.edit.lock().await;
    let current = shell.config.read().await.clone();
    let opened = match open_to_lan(&current, network, own) {
        Ok(c) => c,
        Err(message) => {
            return Ok(LanReply {
                ok: false,
                errors: vec![FieldError {
                    key: "listener.allow".into(),
                    message,
                }],
                restarted: false,
            })
        }
    };
    let text = match settings::minimal_toml(&opened, &shell.config_path) {
        Ok(t) => t,
        Err(errors) => {
            return Ok(LanReply {
                ok: false,
                errors,
                restarted: false,
            })
        }
    };
    let restarted = settings::save_and_apply(shell, opened, &text, restart).await?;
    tracing::info!(network, "listening on the LAN for devices");
    Ok(LanReply {
        ok: true,
        errors: vec![],
        restarted,
    })
}

#[tauri::command]
pub async fn get_device_card(shell: State<'_, Shell>) -> Result<DeviceCard, String> {
    let addresses = tokio::task::spawn_blocking(addresses)
        .await
        .map_err(|e| e.to_string())??;
    Ok(card(&*shell.config.read().await, addresses))
}

#[tauri::command]
pub async fn listen_on_lan<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    setup: State<'_, Setup>,
    network: String,
) -> Result<LanReply, String> {
    let own = tokio::task::spawn_blocking(addresses)
        .await
        .map_err(|e| e.to_string())??;
    let own = networks(&own);
    open(&shell, &setup, &network, &own, || {
        crate::app::start_engine(&app)
    })
    .await
}

#[cfg(test)]
#[path = "lan_tests.rs"]
mod tests;
