//! The administrator's console and API (C3). What is built so far: the
//! local accounts that sign in to it, with their roles
//! ([`accounts`]), and the audit log of every change ([`audit`]), both in
//! the server's metadata store and managed with `branchline admin`. The
//! HTTPS API and the pages come next (docs/ARCHITECTURE.md, "The
//! console").

pub mod accounts;
pub mod audit;
