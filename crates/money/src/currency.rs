//! ISO 4217 currencies with their minor-unit exponents: the platform's one
//! currency table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::MoneyError;

/// Declares [`Currency`] from `CODE exponent` pairs, so that the variant,
/// its code and its exponent are written once.
macro_rules! currencies {
    ($($code:ident $exponent:literal),+ $(,)?) => {
        /// An ISO 4217 currency, by its alphabetic code.
        ///
        /// The variants are ISO 4217 List One as published on 2026-01-01,
        /// without the codes whose minor unit is "N.A." (precious metals,
        /// bond-market units, SDR, XSU, XUA, XTS, XXX): an amount in minor
        /// units means nothing for them. Withdrawn codes (e.g. BGN, HRK, ANG)
        /// are not included.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Currency {
            $(
                #[doc = concat!("`", stringify!($code), "`, ", stringify!($exponent), " minor-unit digits.")]
                $code,
            )+
        }

        impl Currency {
            const TABLE: &'static [Currency] = &[$(Currency::$code),+];

            /// The alphabetic code, e.g. `EUR`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$code => stringify!($code),)+
                }
            }

            /// Number of minor-unit digits: EUR 2 (cents), JPY 0, KWD 3
            /// (fils), CLF 4.
            pub const fn exponent(self) -> u8 {
                match self {
                    $(Self::$code => $exponent,)+
                }
            }

            fn from_code(code: &str) -> Option<Self> {
                match code {
                    $(stringify!($code) => Some(Self::$code),)+
                    _ => None,
                }
            }
        }
    };
}

currencies! {
    AED 2, AFN 2, ALL 2, AMD 2, AOA 2, ARS 2, AUD 2, AWG 2, AZN 2,
    BAM 2, BBD 2, BDT 2, BHD 3, BIF 0, BMD 2, BND 2, BOB 2, BOV 2, BRL 2, BSD 2, BTN 2, BWP 2,
    BYN 2, BZD 2,
    CAD 2, CDF 2, CHE 2, CHF 2, CHW 2, CLF 4, CLP 0, CNY 2, COP 2, COU 2, CRC 2, CUP 2, CVE 2,
    CZK 2,
    DJF 0, DKK 2, DOP 2, DZD 2,
    EGP 2, ERN 2, ETB 2, EUR 2,
    FJD 2, FKP 2,
    GBP 2, GEL 2, GHS 2, GIP 2, GMD 2, GNF 0, GTQ 2, GYD 2,
    HKD 2, HNL 2, HTG 2, HUF 2,
    IDR 2, ILS 2, INR 2, IQD 3, IRR 2, ISK 0,
    JMD 2, JOD 3, JPY 0,
    KES 2, KGS 2, KHR 2, KMF 0, KPW 2, KRW 0, KWD 3, KYD 2, KZT 2,
    LAK 2, LBP 2, LKR 2, LRD 2, LSL 2, LYD 3,
    MAD 2, MDL 2, MGA 2, MKD 2, MMK 2, MNT 2, MOP 2, MRU 2, MUR 2, MVR 2, MWK 2, MXN 2, MXV 2,
    MYR 2, MZN 2,
    NAD 2, NGN 2, NIO 2, NOK 2, NPR 2, NZD 2,
    OMR 3,
    PAB 2, PEN 2, PGK 2, PHP 2, PKR 2, PLN 2, PYG 0,
    QAR 2,
    RON 2, RSD 2, RUB 2, RWF 0,
    SAR 2, SBD 2, SCR 2, SDG 2, SEK 2, SGD 2, SHP 2, SLE 2, SOS 2, SRD 2, SSP 2, STN 2, SVC 2,
    SYP 2, SZL 2,
    THB 2, TJS 2, TMT 2, TND 3, TOP 2, TRY 2, TTD 2, TWD 2, TZS 2,
    UAH 2, UGX 0, USD 2, USN 2, UYI 0, UYU 2, UYW 4, UZS 2,
    VED 2, VES 2, VND 0, VUV 0,
    WST 2,
    XAD 2, XAF 0, XCD 2, XCG 2, XOF 0, XPF 0,
    YER 2,
    ZAR 2, ZMW 2, ZWG 2,
}

impl Currency {
    /// Parses an alphabetic code exactly as ISO 4217 writes it (`EUR`, not
    /// `eur` or ` EUR`).
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        Self::from_code(code).ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }

    /// Every currency of the table, in code order.
    pub fn all() -> &'static [Currency] {
        Self::TABLE
    }

    /// `10^exponent`: minor units in one major unit (100 for EUR).
    pub const fn minor_per_major(self) -> u64 {
        10_u64.pow(self.exponent() as u32)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::parse(code)
    }
}

impl TryFrom<&str> for Currency {
    type Error = MoneyError;
    fn try_from(code: &str) -> Result<Self, Self::Error> {
        Self::parse(code)
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::parse(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.as_str().to_owned()
    }
}

/// On the wire a currency is its code, a JSON string: `"EUR"`.
impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exponents either old table (payments', communication's) had,
    /// and the unusual ones, against ISO 4217.
    #[test]
    fn exponents_follow_iso_4217() {
        let expected: &[(&str, u8)] = &[
            // payments' table
            ("CHF", 2),
            ("CZK", 2),
            ("DKK", 2),
            ("EUR", 2),
            ("GBP", 2),
            ("HUF", 2),
            ("JPY", 0),
            ("KWD", 3),
            ("NOK", 2),
            ("PLN", 2),
            ("SEK", 2),
            ("USD", 2),
            // communication's table
            ("KRW", 0),
            ("ISK", 0),
            ("CLP", 0),
            ("VND", 0),
            ("BHD", 3),
            ("OMR", 3),
            ("JOD", 3),
            ("TND", 3),
            // communication formatted these with 2 decimals, ISO says otherwise
            ("IQD", 3),
            ("LYD", 3),
            ("BIF", 0),
            ("DJF", 0),
            ("GNF", 0),
            ("KMF", 0),
            ("PYG", 0),
            ("RWF", 0),
            ("UGX", 0),
            ("UYI", 0),
            ("VUV", 0),
            ("XAF", 0),
            ("XOF", 0),
            ("XPF", 0),
            ("CLF", 4),
            ("UYW", 4),
        ];
        for (code, exponent) in expected {
            assert_eq!(
                Currency::parse(code).unwrap().exponent(),
                *exponent,
                "{code}"
            );
        }
    }

    #[test]
    fn unknown_lowercase_padded_and_unitless_codes_are_rejected() {
        for code in [
            "eur", "Eur", "XYZ", "", " EUR", "EUR ", "EURO", "XAU", "XXX", "XTS", "BGN",
        ] {
            assert_eq!(
                Currency::parse(code),
                Err(MoneyError::UnknownCurrency(code.to_owned())),
                "{code:?}"
            );
        }
    }

    #[test]
    fn the_table_is_sorted_unique_and_well_formed() {
        let all = Currency::all();
        assert!(all.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
        for c in all {
            assert_eq!(c.as_str().len(), 3);
            assert!(c.as_str().bytes().all(|b| b.is_ascii_uppercase()));
            assert!(c.exponent() <= 4, "{c}");
            assert_eq!(Currency::parse(c.as_str()), Ok(*c));
        }
        assert_eq!(all.len(), 165);
    }

    #[test]
    fn a_currency_is_its_code_on_the_wire() {
        assert_eq!(serde_json::to_string(&Currency::EUR).unwrap(), "\"EUR\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"JPY\"").unwrap(),
            Currency::JPY
        );
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
        assert!(serde_json::from_str::<Currency>("978").is_err());
    }
}
