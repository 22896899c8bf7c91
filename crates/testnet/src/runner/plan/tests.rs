use super::*;
use crate::scenario::{Content, DhtSpec, Discovery, TrackerSpec};

pub(crate) fn group(name: &str, role: Role, count: u32) -> Group {
    Group {
        name: name.to_owned(),
        count,
        role,
        upload_limit: None,
        download_limit: None,
        join_at: Duration::ZERO,
        join_spread: Duration::ZERO,
        leave: Leave::Never,
        discovery: Discovery {
            dht: true,
            pex: true,
            tracker: true,
        },
        magnet: false,
    }
}

fn fixtures() -> (NodePaths, Sources, Endpoints) {
    let paths = NodePaths::new(Path::new("/run/nodes"), "g-00");
    let sources = Sources {
        torrent: PathBuf::from("/run/content/content.torrent"),
        magnet: "magnet:?xt=urn:btih:00".to_owned(),
        content_name: "content".to_owned(),
    };
    let endpoints = Endpoints {
        bootstrap: vec![
            "/ip4/127.0.0.1/tcp/1/p2p/A".into(),
            "/ip4/127.0.0.1/tcp/2/p2p/B".into(),
        ],
        tracker: Some("http://127.0.0.1:9/announce".to_owned()),
    };
    (paths, sources, endpoints)
}

fn has_pair(args: &[String], flag: &str, value: &str) -> bool {
    args.windows(2).any(|w| w[0] == flag && w[1] == value)
}

fn has(args: &[String], flag: &str) -> bool {
    args.iter().any(|a| a == flag)
}

#[test]
fn join_schedule_spreads_evenly() {
    let mut g = group("l", Role::Leecher, 4);
    g.join_at = Duration::from_secs(10);
    g.join_spread = Duration::from_secs(8);
    let times: Vec<_> = (0..4).map(|i| join_time(&g, i).as_secs_f64()).collect();
    assert_eq!(times, vec![10.0, 12.0, 14.0, 16.0]);
}

#[test]
fn plan_names_every_node_in_order() {
    let scenario = Scenario {
        name: "s".into(),
        seed: 1,
        timeout: Duration::from_secs(60),
        content: Content {
            size: 1,
            piece_length: None,
            files: 1,
        },
        tracker: TrackerSpec { enabled: false },
        dht: DhtSpec { bootstrap_nodes: 1 },
        groups: vec![
            group("seeders", Role::Seeder, 1),
            group("leechers", Role::Leecher, 2),
        ],
        faults: vec![],
    };
    let names: Vec<_> = plan_nodes(&scenario).into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["seeders-00", "leechers-00", "leechers-01"]);
}

#[test]
fn seeder_command_line() {
    let (paths, sources, endpoints) = fixtures();
    let mut g = group("s", Role::Seeder, 1);
    g.upload_limit = Some(2_097_152);
    let args = node_args(&g, &paths, &sources, &endpoints);
    assert_eq!(args[0], "seed");
    assert_eq!(args[1], "/run/nodes/g-00/download/content");
    assert!(has_pair(&args, "--torrent", "/run/content/content.torrent"));
    assert!(has_pair(&args, "--data-dir", "/run/nodes/g-00/data"));
    assert!(has_pair(&args, "--metrics", "127.0.0.1:0"));
    assert!(has_pair(&args, "--listen", "/ip4/127.0.0.1/tcp/0"));
    assert!(has_pair(&args, "--bootstrap", "/ip4/127.0.0.1/tcp/1/p2p/A"));
    assert!(has_pair(&args, "--bootstrap", "/ip4/127.0.0.1/tcp/2/p2p/B"));
    assert!(has_pair(&args, "--tracker", "http://127.0.0.1:9/announce"));
    assert!(has_pair(&args, "--upload-limit", "2097152B/s"));
    assert!(!has(&args, "--no-dht") && !has(&args, "--no-pex") && !has(&args, "-o"));
}

#[test]
fn leecher_command_lines_by_discovery() {
    let (paths, sources, endpoints) = fixtures();
    let mut g = group("l", Role::Leecher, 1);
    g.discovery = Discovery {
        dht: false,
        pex: false,
        tracker: false,
    };
    g.download_limit = Some(1000);
    g.leave = Leave::OnCompletion;
    let args = node_args(&g, &paths, &sources, &endpoints);
    assert_eq!(
        args[..4],
        [
            "get",
            "/run/content/content.torrent",
            "-o",
            "/run/nodes/g-00/download"
        ]
    );
    assert!(has(&args, "--no-dht") && has(&args, "--no-pex") && has(&args, "--exit-when-done"));
    assert!(!has(&args, "--bootstrap") && !has(&args, "--tracker"));
    assert!(has_pair(&args, "--download-limit", "1000B/s"));

    g.discovery.dht = true;
    g.magnet = true;
    g.leave = Leave::Never;
    let no_tracker = Endpoints {
        tracker: None,
        ..endpoints.clone()
    };
    let args = node_args(&g, &paths, &sources, &no_tracker);
    assert_eq!(args[1], "magnet:?xt=urn:btih:00");
    assert!(has(&args, "--bootstrap") && !has(&args, "--no-dht") && !has(&args, "--tracker"));
    assert!(!has(&args, "--exit-when-done"));
}

#[test]
fn free_riders_and_hostile_nodes() {
    let (paths, sources, endpoints) = fixtures();
    let args = node_args(
        &group("f", Role::FreeRider, 1),
        &paths,
        &sources,
        &endpoints,
    );
    assert!(has(&args, "--free-ride") && !has(&args, "--corrupt-uploads"));
    let args = node_args(&group("h", Role::Hostile, 1), &paths, &sources, &endpoints);
    assert!(has(&args, "--corrupt-uploads") && !has(&args, "--free-ride"));
}

#[test]
fn tracker_and_bootstrap_command_lines() {
    assert_eq!(
        tracker_args(0),
        ["tracker", "--listen", "127.0.0.1:0", "--interval", "30"]
    );
    let (paths, _, _) = fixtures();
    let args = bootstrap_args(&paths);
    assert_eq!(args[0], "node");
    assert!(has_pair(&args, "--metrics", "127.0.0.1:0"));
}
