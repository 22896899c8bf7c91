//! The fluid-model lower bound on distribution time (Kumar & Ross, "Peer-assisted file
//! distribution: the minimum distribution time", 2006).
//!
//! With `F` the content size, `u_s` the seeders' total upload capacity, `N` downloaders with
//! upload capacities `u_i` and the smallest download capacity `d_min`, no swarm can get the
//! content to all `N` faster than
//!
//! ```text
//! T_min = max(F / u_s, F / d_min, N·F / (u_s + Σ u_i))
//! ```
//!
//! The seeder must send every byte at least once; the slowest downloader must receive every
//! byte; and `N·F` bytes must be uploaded by everyone together. An unlimited capacity drops the
//! terms it appears in (they go to zero).

use crate::record::RunRecord;

/// `T_min` in seconds when every capacity is known (bytes and bytes per second).
///
/// `leecher_uploads` has one entry per downloader that must finish (0 for a free-rider); its
/// length is `N`. `min_download` is the smallest download cap among them, `None` if none is
/// capped. A `seed_upload` of 0 gives infinity: nothing can ever be distributed.
pub fn t_min(
    file: u64,
    seed_upload: u64,
    leecher_uploads: &[u64],
    min_download: Option<u64>,
) -> f64 {
    let total: u64 = leecher_uploads
        .iter()
        .fold(seed_upload, |a, &u| a.saturating_add(u));
    bound(
        file,
        Some(seed_upload),
        Some(total),
        leecher_uploads.len(),
        min_download,
    )
    .unwrap_or(0.0)
}

/// The bound with unlimited capacities as `None`: `seed_upload` the seeders' total,
/// `total_upload` everyone's total (seeders included), `n` the number of downloaders.
/// `None` when no term is finite-and-known.
fn bound(
    file: u64,
    seed_upload: Option<u64>,
    total_upload: Option<u64>,
    n: usize,
    min_download: Option<u64>,
) -> Option<f64> {
    let f = file as f64;
    let div = |num: f64, den: u64| {
        if den == 0 {
            f64::INFINITY
        } else {
            num / den as f64
        }
    };
    [
        seed_upload.map(|u| div(f, u)),
        min_download.map(|d| div(f, d)),
        total_upload.map(|u| div(n as f64 * f, u)),
    ]
    .into_iter()
    .flatten()
    .reduce(f64::max)
}

/// `T_min` in seconds for a recorded run, from its nodes' caps: the seeders (role `seeder`)
/// are the source, the nodes with `should_complete` the downloaders (free-riders upload 0).
///
/// `None` when the run has no seeder or no downloader, or when every cap involved is
/// unlimited. An uncapped seeder drops the `F/u_s` and `N·F/(u_s+Σu_i)` terms; an uncapped
/// uploading downloader drops the last term.
pub fn fluid_bound(record: &RunRecord) -> Option<f64> {
    let seeders: Vec<_> = record.nodes.iter().filter(|n| n.role == "seeder").collect();
    let downloaders: Vec<_> = record.nodes.iter().filter(|n| n.should_complete).collect();
    if seeders.is_empty() || downloaders.is_empty() {
        return None;
    }
    let seed_upload = seeders
        .iter()
        .map(|n| n.upload_limit)
        .try_fold(0u64, |a, u| u.map(|u| a.saturating_add(u)));
    let leecher_upload = downloaders
        .iter()
        .map(|n| {
            if n.role == "free-rider" {
                Some(0)
            } else {
                n.upload_limit
            }
        })
        .try_fold(0u64, |a, u| u.map(|u| a.saturating_add(u)));
    let total_upload = seed_upload
        .zip(leecher_upload)
        .map(|(s, l)| s.saturating_add(l));
    let min_download = downloaders.iter().filter_map(|n| n.download_limit).min();
    bound(
        record.content_size,
        seed_upload,
        total_upload,
        downloaders.len(),
        min_download,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::NodeRecord;

    const MIB: u64 = 1 << 20;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn seeder_bound_dominates() {
        // 64 MiB, seeder 2 MiB/s, 50 leechers at 2 MiB/s: max(32, 50*64/102 = 31.37) = 32.
        let t = t_min(64 * MIB, 2 * MIB, &[2 * MIB; 50], None);
        assert!(close(t, 32.0), "{t}");
    }

    #[test]
    fn swarm_bound_dominates() {
        // 100 MiB, seeder 10 MiB/s, 10 free-riders: max(10, 10*100/10 = 100) = 100.
        let t = t_min(100 * MIB, 10 * MIB, &[0; 10], None);
        assert!(close(t, 100.0), "{t}");
        // 4 leechers at 1 MiB/s: 4*100/(10+4) = 28.571...
        let t = t_min(100 * MIB, 10 * MIB, &[MIB; 4], None);
        assert!(close(t, 400.0 / 14.0), "{t}");
    }

    #[test]
    fn download_bound_dominates() {
        // 100 MiB at a 1 MiB/s download cap: 100 s, more than 100/10 and 2*100/30.
        let t = t_min(100 * MIB, 10 * MIB, &[10 * MIB, 10 * MIB], Some(MIB));
        assert!(close(t, 100.0), "{t}");
    }

    #[test]
    fn zero_seed_upload_is_infinite() {
        assert!(t_min(1, 0, &[], None).is_infinite());
    }

    fn node(name: &str, role: &str, up: Option<u64>, down: Option<u64>) -> NodeRecord {
        NodeRecord {
            name: name.into(),
            group: role.into(),
            role: role.into(),
            should_complete: matches!(role, "leecher" | "free-rider"),
            join_s: 0.0,
            completed_s: None,
            left_s: None,
            bytes_up: 0,
            bytes_down: 0,
            duplicate_bytes: 0,
            peers_by_source: Default::default(),
            bans: 0,
            content_ok: None,
            upload_limit: up,
            download_limit: down,
            samples: vec![],
        }
    }

    fn run(nodes: Vec<NodeRecord>, size: u64) -> RunRecord {
        RunRecord {
            scenario: "t".into(),
            seed: 0,
            started_unix: 0,
            duration_s: 0.0,
            content_size: size,
            num_pieces: 1,
            mode: "in-process".into(),
            timed_out: false,
            nodes,
            faults: vec![],
        }
    }

    #[test]
    fn from_record_with_free_riders_and_hostile() {
        // Seeders 2 + 2 MiB/s; two leechers at 1 MiB/s; one free-rider (capped, but counts 0);
        // a hostile node neither counts nor contributes. F = 60 MiB, N = 3:
        // max(60/4 = 15, 3*60/(4+2) = 30) = 30.
        let r = run(
            vec![
                node("s1", "seeder", Some(2 * MIB), None),
                node("s2", "seeder", Some(2 * MIB), None),
                node("l1", "leecher", Some(MIB), None),
                node("l2", "leecher", Some(MIB), None),
                node("f1", "free-rider", Some(100 * MIB), None),
                node("h1", "hostile", None, None),
            ],
            60 * MIB,
        );
        let t = fluid_bound(&r).unwrap();
        assert!(close(t, 30.0), "{t}");
    }

    #[test]
    fn unlimited_caps() {
        // Uncapped seeder, capped leechers without download caps: no term left.
        let r = run(
            vec![
                node("s", "seeder", None, None),
                node("l", "leecher", Some(MIB), None),
            ],
            MIB,
        );
        assert_eq!(fluid_bound(&r), None);
        // Uncapped leecher upload but capped seeder: only F/u_s = 8 s.
        let r = run(
            vec![
                node("s", "seeder", Some(MIB), None),
                node("l", "leecher", None, None),
            ],
            8 * MIB,
        );
        assert!(close(fluid_bound(&r).unwrap(), 8.0));
        // Download cap only: F/d_min = 4 s (the uncapped one does not count).
        let r = run(
            vec![
                node("s", "seeder", None, None),
                node("a", "leecher", None, Some(2 * MIB)),
                node("b", "leecher", None, None),
            ],
            8 * MIB,
        );
        assert!(close(fluid_bound(&r).unwrap(), 4.0));
        // No seeder at all.
        assert_eq!(
            fluid_bound(&run(vec![node("l", "leecher", Some(1), None)], 1)),
            None
        );
    }
}
