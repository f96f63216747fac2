//! Control channel tests: the shared line protocol over any stream, this
//! platform's transport end to end, and the Windows pipe name.

use super::*;
use crate::events::Events;
use crate::secrets::SecretStore;

async fn controller(dir: &Path) -> Arc<Controller> {
    let config = Config::parse("", Path::new("test.toml")).unwrap();
    let spool = Spool::open(dir, Events::new()).await.unwrap();
    Arc::new(Controller {
        tokens: TokenSource::new(&config, SecretStore::new()),
        config: Arc::new(config),
        spool,
        worker: None,
        throttle: None,
        tracking: None,
        listening: vec![],
    })
}

/// The protocol both transports share, over a plain in-memory stream:
/// a request line in, its response line out, as `request` reads it.
#[tokio::test]
async fn the_protocol_is_the_same_over_any_stream() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(dir.path()).await;
    let (client, server) = tokio::io::duplex(1024);
    let served = tokio::spawn(serve_client(server, c.clone()));
    let resp = exchange(client, &Request::Queue).await.unwrap();
    assert!(resp.ok, "{resp:?}");
    assert_eq!(resp.data, Some(json!([])));
    // The client hung up: the server's task ends.
    served.await.unwrap();

    let (client, server) = tokio::io::duplex(1024);
    tokio::spawn(serve_client(server, c.clone()));
    let resp = exchange(client, &Request::Pause).await.unwrap();
    assert_eq!(resp.error.as_deref(), Some("Postern is not running"));

    // A line that is no request gets an error, and the connection
    // answers the next one.
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (client, server) = tokio::io::duplex(1024);
    tokio::spawn(serve_client(server, c));
    let (read, mut write) = tokio::io::split(client);
    let mut lines = BufReader::new(read).lines();
    write
        .write_all(b"{\"op\":\"launch\"}\n{\"op\":\"queue\"}\n")
        .await
        .unwrap();
    let bad: Response = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert!(bad.error.unwrap().starts_with("bad request"));
    let good: Response = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert!(good.ok);
}

/// `request` and `serve` through this platform's transport; no engine:
/// `NotRunning`, which sends the CLI to the spool.
#[tokio::test]
async fn request_reaches_serve_through_the_transport() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(dir.path()).await;
    assert!(matches!(
        request(dir.path(), &Request::Queue).await,
        Err(ClientError::NotRunning)
    ));
    let socket = bind(dir.path()).unwrap();
    let (stop, stopped) = watch::channel(false);
    let served = tokio::spawn(serve(socket, c, stopped));
    let resp = request(dir.path(), &Request::Queue).await.unwrap();
    assert!(resp.ok, "{resp:?}");
    stop.send_replace(true);
    served.await.unwrap();
    unbind(dir.path());
    assert!(matches!(
        request(dir.path(), &Request::Queue).await,
        Err(ClientError::NotRunning)
    ));
}

/// The Windows pipe name is fixed by the user and the spool: the same
/// for the engine and every CLI of any build, different for another
/// user or spool, and a valid pipe name.
#[test]
fn pipe_names_depend_on_user_and_spool_only() {
    let spool = Path::new(r"C:\Users\ann\AppData\Local\Postern\spool");
    let ann = transport::pipe_name("S-1-5-21-1-2-3-1001", spool);
    assert_eq!(ann, transport::pipe_name("S-1-5-21-1-2-3-1001", spool));
    // Pinned: a change here would leave an old CLI unable to find a new
    // engine's pipe.
    assert_eq!(ann, r"\\.\pipe\postern-36dd43d8e3dd0b24");
    assert_ne!(ann, transport::pipe_name("S-1-5-21-1-2-3-1002", spool));
    assert_ne!(
        ann,
        transport::pipe_name("S-1-5-21-1-2-3-1001", Path::new(r"D:\spool"))
    );
    assert!(ann.len() < 256);
}

/// A request line has a bound: past it the client gets an error, and
/// nothing more of it is buffered.
#[tokio::test]
async fn request_lines_are_bounded() {
    let long = vec![b'x'; MAX_REQUEST_LINE as usize + 10];
    let mut r = tokio::io::BufReader::new(&long[..]);
    let err = read_request(&mut r).await.unwrap_err();
    assert!(err.contains("longer than"), "{err}");
    let mut r = tokio::io::BufReader::new(&b"{\"op\":\"status\"}\n"[..]);
    assert_eq!(
        read_request(&mut r).await.unwrap().as_deref(),
        Some("{\"op\":\"status\"}")
    );
    assert_eq!(read_request(&mut r).await.unwrap(), None);
}
