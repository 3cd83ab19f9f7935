//! Records keyed by the course's names (`{ Wax, Waa, ... }`, caches, gradients) and the core
//! structs they stand for, converted field by field in one place. [`course_record!`] declares
//! a record from its field list; each field converts through [`Field`], so a tensor becomes
//! a 2-d or 3-d array as the core field's type says, and a nested record its core struct.

use ndarray::{Array2, Array3};

use crate::errors::Result;
use crate::tensor::{from_array, to_array2, to_array3, Tensor};

/// A JS value that stands for the core value `C`.
pub trait Field<C>: Sized {
    /// Reads the value; errors name it `name`.
    fn to_core(&self, name: &str) -> Result<C>;
    fn from_core(core: &C) -> Self;
}

impl Field<Array2<f64>> for Tensor {
    fn to_core(&self, name: &str) -> Result<Array2<f64>> {
        to_array2(name, self)
    }

    fn from_core(core: &Array2<f64>) -> Self {
        from_array(core)
    }
}

impl Field<Array3<f64>> for Tensor {
    fn to_core(&self, name: &str) -> Result<Array3<f64>> {
        to_array3(name, self)
    }

    fn from_core(core: &Array3<f64>) -> Self {
        from_array(core)
    }
}

/// The JS key of a record field: its `as "..."` name, else the Rust name.
macro_rules! js_key {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $js:tt) => {
        $js
    };
}
pub(crate) use js_key;

/// Declares a `#[napi(object)]` record standing for the core struct `$core`: each field has
/// the core field's Rust name, an optional JS key (`wax as "Wax"`) and its JS type (`Tensor`
/// or another record). Generates `to_core(name)` (errors name `name.Key`, fields read in the
/// order listed), `from_core` and the [`Field`] impl that lets records nest.
// Keys, docs and types are matched as `tt`/`ident`, not `literal`/`ty`: those would reach
// napi-derive wrapped in invisible groups, which its TypeScript generation does not read.
// Docs are written `#[doc = "..."]`: a `///` comment passed through becomes a raw string,
// which napi-derive would copy into index.d.ts with its `r"`.
macro_rules! course_record {
    (
        $(#[doc = $doc:tt])*
        pub struct $name:ident for $core:path {
            $( $(#[doc = $field_doc:tt])* $field:ident $(as $js:tt)? : $ty:ident ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[napi(object)]
        pub struct $name {
            $( $(#[doc = $field_doc])* $(#[napi(js_name = $js)])? pub $field: $ty, )*
        }

        impl $name {
            #[allow(dead_code)]
            pub fn to_core(&self, name: &str) -> $crate::errors::Result<$core> {
                // a `path` fragment cannot name a struct literal; an alias can
                type Core = $core;
                Ok(Core {
                    $( $field: $crate::record::Field::to_core(
                        &self.$field,
                        &format!("{name}.{}", $crate::record::js_key!($field $(, $js)?)),
                    )?, )*
                })
            }

            #[allow(dead_code)]
            pub fn from_core(core: &$core) -> Self {
                $name { $( $field: $crate::record::Field::from_core(&core.$field), )* }
            }
        }

        impl $crate::record::Field<$core> for $name {
            fn to_core(&self, name: &str) -> $crate::errors::Result<$core> {
                $name::to_core(self, name)
            }

            fn from_core(core: &$core) -> Self {
                $name::from_core(core)
            }
        }
    };
}
pub(crate) use course_record;
