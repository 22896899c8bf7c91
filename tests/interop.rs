//! Interoperability with real BitTorrent software: torrents and magnet links made by `shoal`
//! must read the same in libtorrent and Transmission, and theirs (and mktorrent's) in `shoal`.
//!
//! The tools come from Debian packages, which CI installs: `python3-libtorrent` (used through
//! `tests/interop/lt_tool.py` with `/usr/bin/python3`), `transmission-cli` (`transmission-show`,
//! `transmission-create`) and `mktorrent`. A missing tool fails the test, naming the package.
//!
//! File trees are pseudo-random but derived from the fixed seeds in [`trees::SEEDS`], and every
//! assertion names the case (kind and seed), so a failure can be reproduced exactly.
//!
//! One test binary; its modules live in `interop/` beside the Python helpers.

// Cargo would take files beside this one for test binaries of their own, so the modules live
// in `interop/` and are named by path.
#[path = "interop/made_by_others.rs"]
mod made_by_others;
#[path = "interop/made_by_shoal.rs"]
mod made_by_shoal;
#[path = "interop/magnets.rs"]
mod magnets;
mod support;
#[path = "interop/tools.rs"]
mod tools;
#[path = "interop/trees.rs"]
mod trees;
#[path = "interop/views.rs"]
mod views;
