//! The bootstrap contract: values, their sources, and the platform's tier rules.

mod configmap;
mod source;
mod values;

pub use configmap::{ConfigMapError, InvalidConfigMapRef, ValuesConfigMap};
pub use source::{Origin, Source, Sourced};
pub use values::{
    Ceiling, ContractRules, DEFAULT_BASE_DOMAIN, ENVIRONMENTS, InvalidContractRules, Mode,
    Platform, PlatformFlag, Problem, Values, ValuesError, ValuesLayer,
};
