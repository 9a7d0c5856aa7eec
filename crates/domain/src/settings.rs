//! A person's privacy choices: how precisely friends see them, and who sees their check-ins.

use std::fmt;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident {
        $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "must be one of {}",
                        [$(concat!("`", $text, "`")),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// How precisely a person's friends may see where they are (DESIGN.md §5).
    PrecisionLevel {
        Exact => "exact",
        /// The default: friends see the person's H3 resolution-8 cell.
        #[default]
        Neighborhood => "neighborhood",
        City => "city",
        Off => "off",
    }
);

impl PrecisionLevel {
    /// How coarse a level is: `exact` 0 … `off` 3.
    const fn rank(self) -> u8 {
        match self {
            Self::Exact => 0,
            Self::Neighborhood => 1,
            Self::City => 2,
            Self::Off => 3,
        }
    }

    /// The coarser of two levels: precision is reciprocal, so two people see each other at
    /// the coarser of their choices (DESIGN.md §5).
    pub const fn coarser(self, other: Self) -> Self {
        if self.rank() >= other.rank() {
            self
        } else {
            other
        }
    }
}

text_enum!(
    /// Who may see a check-in.
    Visibility {
        Public => "public",
        #[default]
        Friends => "friends",
        Private => "private",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_round_trips_through_text() {
        for level in PrecisionLevel::ALL {
            assert_eq!(PrecisionLevel::parse(level.as_str()), Ok(*level));
        }
        for visibility in Visibility::ALL {
            assert_eq!(Visibility::parse(visibility.as_str()), Ok(*visibility));
        }
    }

    #[test]
    fn the_coarser_level_wins_either_way_round() {
        use PrecisionLevel::*;
        for (a, b, coarser) in [
            (Exact, Exact, Exact),
            (Exact, Neighborhood, Neighborhood),
            (City, Neighborhood, City),
            (Exact, Off, Off),
            (Off, City, Off),
        ] {
            assert_eq!(a.coarser(b), coarser);
            assert_eq!(b.coarser(a), coarser);
        }
    }

    #[test]
    fn unknown_levels_are_rejected_with_the_choices() {
        let message = PrecisionLevel::parse("Exact").unwrap_err();
        assert!(
            message.contains("`exact`") && message.contains("`off`"),
            "{message}"
        );
    }
}
