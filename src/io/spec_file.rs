//! A model spec from JSON text (a file, a preset, the page's storage).

use crate::error::Error;
use crate::nn::ModelSpec;

impl ModelSpec {
    /// Parses a spec from JSON text.
    ///
    /// # Errors
    /// `Error::Json` when the text is not JSON; `Error::Spec` naming the layer
    /// or section when it is JSON but not a spec (see `ModelSpec::from_value`).
    pub fn from_json(text: &str) -> Result<ModelSpec, Error> {
        let root: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Json(e.to_string()))?;
        Ok(ModelSpec::from_value(&root)?)
    }
}
