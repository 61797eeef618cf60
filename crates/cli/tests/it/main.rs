#![allow(unreachable_pub, reason = "test modules share helpers")]

//! Integration tests: real servers, real HTTP, real SQLite files, the real `ferry` binary.
//! One test binary keeps build and link time down.

mod architecture;
mod auth;
mod bad_input;
mod change_feed;
mod cli;
mod collabs;
mod console;
mod console_collabs;
mod console_spaces;
mod faults;
mod federation;
mod files;
mod harness;
mod hostile;
mod items;
mod lifecycle;
mod peer_manager;
mod peers;
mod policy;
mod readme;
mod roundtrip;
mod sync;
mod trust;
mod two_way;
