//! Connections per node when every node runs in this one process (`--in-process`).
//!
//! Both ends of a loopback connection between two in-process nodes are descriptors of this
//! process, and so are each node's listener, metrics listener and open files. A node's default
//! cap ([`shoal_node::NodeConfig::max_connections`]) times a thousand nodes is far beyond any
//! open-file limit, and running out mid-run fails accepts, dials and file opens at random. So
//! the cap is the share of the limit each node can actually have.

/// Descriptors kept aside for the runner itself (tracker pipes, run files, polls).
const RESERVED: u64 = 512;
/// Descriptors each node holds besides its connections and content files: listeners, the
/// resume and state files, tracker announces and a metrics poll in flight.
const PER_NODE: u64 = 7;
/// Content files a node keeps open at most (`shoal_storage::DEFAULT_OPEN_FILES`).
const OPEN_CONTENT_FILES: u64 = 64;
/// Fewer connections than this and a node could not trade with a useful set of peers.
pub const MIN_CONNECTIONS: u32 = 8;

/// The soft open-file limit of this process (`Max open files` in `/proc/self/limits`), if it
/// can be read.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// How the open-file limit is shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Connections each node may have: its share, at most the node's own cap, at least
    /// [`MIN_CONNECTIONS`].
    pub per_node: u32,
    /// The limit is too small even for [`MIN_CONNECTIONS`] each: descriptors may run out.
    pub short: bool,
}

/// The connections each of `nodes` in-process nodes (content in `files` files) may have within
/// `limit` descriptors, at most `default_cap`.
pub fn connections_per_node(limit: u64, nodes: u64, files: u64, default_cap: u32) -> Budget {
    let nodes = nodes.max(1);
    let per_node_fds = PER_NODE + files.clamp(1, OPEN_CONTENT_FILES);
    let for_connections = limit
        .saturating_sub(RESERVED)
        .saturating_sub(nodes.saturating_mul(per_node_fds));
    // A connection costs each node one descriptor on its own side (the other end is in the
    // other node's share). The cap counts established connections only: a third of the share
    // stays free for connections still in their handshake, in and out.
    let share = for_connections / nodes * 2 / 3;
    let share = u32::try_from(share).unwrap_or(u32::MAX);
    Budget {
        per_node: share.clamp(MIN_CONNECTIONS, default_cap.max(MIN_CONNECTIONS)),
        short: share < MIN_CONNECTIONS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_read_from_proc() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max cpu time              unlimited            unlimited            seconds\n\
                    Max open files            20000                20000                files\n";
        assert_eq!(parse_open_file_limit(text), Some(20000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_file_limit(unlimited), Some(u64::MAX));
        assert_eq!(parse_open_file_limit("nothing here"), None);
        assert!(
            open_file_limit().is_some_and(|n| n > 0),
            "this process has a limit"
        );
    }

    #[test]
    fn the_limit_is_shared_out_between_nodes() {
        // 20,000 descriptors: a few nodes keep the default, a thousand get a share.
        let few = connections_per_node(20_000, 10, 1, 512);
        assert_eq!(
            few,
            Budget {
                per_node: 512,
                short: false
            }
        );
        let share = connections_per_node(40_000, 1000, 1, 512);
        assert_eq!(
            u64::from(share.per_node),
            (40_000 - 512 - 8_000) / 1000 * 2 / 3
        );
        assert!(u64::from(share.per_node) * 1000 * 3 / 2 + 8_000 + 512 <= 40_000);
        // Content files count, up to the storage's cache of open files.
        let many_files = connections_per_node(100_000, 1000, 32, 512);
        assert_eq!(
            u64::from(many_files.per_node),
            (100_000 - 512 - 39_000) / 1000 * 2 / 3
        );
        assert_eq!(
            connections_per_node(200_000, 1000, 10_000, 512),
            connections_per_node(200_000, 1000, 64, 512)
        );
        // Never below the floor, whatever the limit, and then it says the limit is short.
        let short = connections_per_node(1_000, 1000, 1, 512);
        assert_eq!(
            short,
            Budget {
                per_node: MIN_CONNECTIONS,
                short: true
            }
        );
        assert_eq!(connections_per_node(u64::MAX, 1000, 1, 512).per_node, 512);
    }
}
