//! Checks over HTTPS, one file per check, through the shared `reqwest` client of the
//! [`Context`](crate::check::Context) (its CA bundle and redirect policy set in
//! [`connect`](crate::connect)).

mod keycloak_realm;

pub use keycloak_realm::{
    ClientCredentials, KEYCLOAK_CA_BUNDLE_SETTING, KeycloakRealm, KeycloakSettings,
};
