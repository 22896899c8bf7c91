//! What the process costs: memory, CPU time and file descriptors, from `/proc/self`.

/// A `/proc/self/status` field in KiB (VmRSS, VmHWM).
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User plus system CPU time of this process so far, in clock ticks (usually 1/100 s).
pub fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses: utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

pub fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

/// The soft and hard limits on open files.
fn fd_limits() -> Option<(String, String)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// Descriptors a worker process needs besides its nodes' connections: the runtime, stdio, a
/// listener per node (counted separately), open piece files.
const FD_OVERHEAD: usize = 256;

/// The per-node connection cap the open-files limit requires, if a node's own cap does not
/// fit; prints the budget either way. Each worker holds at most `per_process` nodes, and each
/// of their connections is one descriptor in that worker (the other end belongs to the peer,
/// in whichever process it lives).
pub fn connection_cap_for_fd_limit(per_process: usize, node_cap: u32) -> Option<u32> {
    let Some((soft, hard)) = fd_limits() else {
        println!("open files limit: unknown; each node keeps its cap of {node_cap} connections");
        return None;
    };
    let Ok(limit) = soft.parse::<usize>() else {
        println!("open files limit: soft {soft}, hard {hard}; no connection cap needed");
        return None;
    };
    let need = per_process * (node_cap as usize + 1) + FD_OVERHEAD;
    if need <= limit {
        println!(
            "open files: soft limit {soft} (hard {hard}) per process; a worker needs at most \
             {per_process} nodes x ({node_cap} connections + 1 listener) + {FD_OVERHEAD} = \
             {need}: every node keeps its cap of {node_cap} connections"
        );
        return None;
    }
    let fit = (limit.saturating_sub(FD_OVERHEAD) / per_process.max(1)).saturating_sub(1);
    let cap = u32::try_from(fit.max(8)).unwrap_or(node_cap);
    println!(
        "NOTE: open files: soft limit {soft} (hard {hard}) per process cannot hold \
         {per_process} nodes x {node_cap} connections; capping each node at {cap} connections \
         (use more --processes, or --max-connections N)"
    );
    Some(cap)
}
