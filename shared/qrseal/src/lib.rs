//! Pre-application QR: sealing household data in a versioned, compressed, AES-256-GCM binary under per-tenant QR keys; rendering and opening.
