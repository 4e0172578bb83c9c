//! The cross-system tests: the whole system under faults, traces across the services, the
//! OpenAPI documents under schemathesis, the compose file, the infra, the key store shared by
//! replicas, scale to zero, and the documentation's claims. They are in `tests/`; this crate has
//! no code of its own.
