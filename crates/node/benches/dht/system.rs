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

/// A per-node connection cap that fits the open-files limit, if the node default (512) does
/// not. Both ends of every loopback connection live in this process, so all the nodes'
/// connections together are about the number of descriptors.
pub fn connection_cap_for_fd_limit(nodes: usize) -> Option<u32> {
    let Some((soft, hard)) = fd_limits() else {
        println!("open files limit: unknown");
        return None;
    };
    println!("open files limit: soft {soft}, hard {hard}");
    let soft = soft.parse::<usize>().ok()?;
    let fit = soft.saturating_sub(1024) / nodes.max(1);
    if fit >= 512 {
        return None;
    }
    let cap = u32::try_from(fit.max(8)).unwrap_or(512);
    println!(
        "NOTE: {soft} open files cannot hold {nodes} nodes x 512 connections; capping each \
         node at {cap} connections (override with --max-connections N, or raise the limit: \
         `ulimit -n 65536`)"
    );
    Some(cap)
}
