//! Key material and sealing, shared by the Vault, start-up and the admin
//! token file: AES-256-GCM with key ids (`cipher`), and key files written
//! with private permissions (`keyfile`).

pub mod cipher;
pub mod keyfile;
