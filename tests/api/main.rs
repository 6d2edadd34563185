//! filmgate's integration tests: the real application (in-process or as the real binary) with
//! pseudo-terminals for the serial ports, real HTTP upstreams on port 0 and real SQLite files.

mod browser;
mod burst;
mod cli;
mod dashboard;
mod delivery;
mod disk;
mod fleet;
mod handover;
mod helpers;
mod integrity;
mod kill;
mod peers;
mod pipeline;
mod protocol;
mod service;
mod spc;
mod stock;
mod surface;
mod upstreams;
