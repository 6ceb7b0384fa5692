//! The heist host library: everything behind the `heist` command line.

pub mod bench;
pub mod data;
pub mod encrypted;
pub mod exit;
pub mod henn;
pub mod model;
pub mod oracle;
pub mod service;
pub mod train;
