//! Entity paths: `camera/front`, hierarchical and `/`-separated.
//!
//! A path is validated once, when it is made: no empty parts, no control characters,
//! no whitespace at either end of a part. A leading `/` is accepted and dropped, so
//! `/camera/front` and `camera/front` are the same entity.

use std::fmt;
use std::sync::Arc;

/// Why a string is not an entity path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityPathError {
    #[error("entity path is empty; give one like `camera/front`")]
    Empty,
    #[error("entity path {path:?}: part {index} is empty (two `/` in a row or a trailing `/`)")]
    EmptyPart { path: String, index: usize },
    #[error("entity path {path:?}: part {part:?} has a control character")]
    ControlCharacter { path: String, part: String },
    #[error("entity path {path:?}: part {part:?} starts or ends with whitespace")]
    Whitespace { path: String, part: String },
}

/// A validated entity path. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityPath(Arc<str>);

impl EntityPath {
    /// Validates and normalizes `path`.
    pub fn parse(path: &str) -> Result<Self, EntityPathError> {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        if trimmed.is_empty() {
            return Err(EntityPathError::Empty);
        }
        for (index, part) in trimmed.split('/').enumerate() {
            if part.is_empty() {
                return Err(EntityPathError::EmptyPart {
                    path: path.to_owned(),
                    index,
                });
            }
            if part.chars().any(char::is_control) {
                return Err(EntityPathError::ControlCharacter {
                    path: path.to_owned(),
                    part: part.to_owned(),
                });
            }
            if part.trim() != part {
                return Err(EntityPathError::Whitespace {
                    path: path.to_owned(),
                    part: part.to_owned(),
                });
            }
        }
        Ok(EntityPath(Arc::from(trimmed)))
    }

    /// The path as written, without a leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated parts.
    pub fn parts(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The parent path, `None` for a top-level entity.
    pub fn parent(&self) -> Option<EntityPath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| EntityPath(Arc::from(parent)))
    }
}

impl fmt::Display for EntityPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EntityPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntityPath({:?})", &*self.0)
    }
}

impl std::str::FromStr for EntityPath {
    type Err = EntityPathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityPath::parse(s)
    }
}

impl TryFrom<&str> for EntityPath {
    type Error = EntityPathError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        EntityPath::parse(s)
    }
}

impl TryFrom<String> for EntityPath {
    type Error = EntityPathError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        EntityPath::parse(&s)
    }
}

impl TryFrom<&String> for EntityPath {
    type Error = EntityPathError;
    fn try_from(s: &String) -> Result<Self, Self::Error> {
        EntityPath::parse(s)
    }
}

impl TryFrom<&EntityPath> for EntityPath {
    type Error = EntityPathError;
    fn try_from(p: &EntityPath) -> Result<Self, Self::Error> {
        Ok(p.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths_normalize() {
        let p = EntityPath::parse("/camera/front").unwrap();
        assert_eq!(p.as_str(), "camera/front");
        assert_eq!(p, EntityPath::parse("camera/front").unwrap());
        assert_eq!(p.parent().unwrap().as_str(), "camera");
        assert_eq!(p.parts().collect::<Vec<_>>(), ["camera", "front"]);
        assert!(EntityPath::parse("cam").unwrap().parent().is_none());
    }

    #[test]
    fn invalid_paths_say_why() {
        assert_eq!(EntityPath::parse(""), Err(EntityPathError::Empty));
        assert_eq!(EntityPath::parse("/"), Err(EntityPathError::Empty));
        let err = EntityPath::parse("camera//front").unwrap_err();
        assert!(
            matches!(err, EntityPathError::EmptyPart { index: 1, .. }),
            "{err}"
        );
        assert!(matches!(
            EntityPath::parse("camera/").unwrap_err(),
            EntityPathError::EmptyPart { index: 1, .. }
        ));
        assert!(matches!(
            EntityPath::parse("cam\nera").unwrap_err(),
            EntityPathError::ControlCharacter { .. }
        ));
        assert!(matches!(
            EntityPath::parse("camera/ front").unwrap_err(),
            EntityPathError::Whitespace { .. }
        ));
        assert!(
            EntityPath::parse("camera//front")
                .unwrap_err()
                .to_string()
                .contains("part 1 is empty")
        );
    }
}
