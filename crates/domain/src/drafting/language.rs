//! Which language a message is written in, as far as the built-in drafter
//! needs to know: English, German, French, Spanish or Portuguese (the
//! languages it writes), or another one. A count of each language's most
//! frequent short words; deterministic, no model, bounded by the text
//! excerpt.

use super::text_excerpt;

/// A language the built-in drafter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    English,
    German,
    French,
    Spanish,
    Portuguese,
}

impl Language {
    pub const ALL: [Language; 5] = [
        Language::English,
        Language::German,
        Language::French,
        Language::Spanish,
        Language::Portuguese,
    ];

    /// ISO 639-1.
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::German => "de",
            Language::French => "fr",
            Language::Spanish => "es",
            Language::Portuguese => "pt",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::English => "English",
            Language::German => "German",
            Language::French => "French",
            Language::Spanish => "Spanish",
            Language::Portuguese => "Portuguese",
        }
    }

    /// Frequent words that say little in the other four.
    fn markers(self) -> &'static [&'static str] {
        match self {
            Language::English => &[
                "the", "and", "you", "for", "with", "this", "that", "have", "are", "is", "please",
                "thanks", "would", "could", "will", "your", "can", "we", "our", "it", "be", "hi",
                "hello", "of", "to", "on", "my",
            ],
            Language::German => &[
                "der", "die", "das", "und", "ich", "sie", "nicht", "mit", "ist", "bitte", "danke",
                "ein", "eine", "wir", "uns", "ihr", "ihnen", "für", "auf", "auch", "können",
                "könnten", "hallo", "liebe", "lieber", "grüße", "gerne", "noch", "wie", "zu",
                "den", "dem", "mir",
            ],
            Language::French => &[
                "le",
                "la",
                "les",
                "et",
                "je",
                "vous",
                "nous",
                "pour",
                "avec",
                "est",
                "une",
                "des",
                "du",
                "merci",
                "bonjour",
                "pas",
                "que",
                "qui",
                "sur",
                "votre",
                "vos",
                "pouvez",
                "cordialement",
                "au",
                "ce",
                "mon",
                "ma",
            ],
            Language::Spanish => &[
                "el", "los", "las", "y", "yo", "usted", "para", "con", "es", "una", "por",
                "gracias", "hola", "que", "del", "su", "sus", "nosotros", "puede", "podría",
                "saludos", "muy", "pero", "como", "mi", "estimado", "estimada",
            ],
            // Without words English has too ("as", "do", "e" of "e.g.",
            // "o", "um", "em"): a short English line must not read
            // Portuguese.
            Language::Portuguese => &[
                "os",
                "eu",
                "você",
                "vocês",
                "com",
                "é",
                "uma",
                "obrigado",
                "obrigada",
                "olá",
                "que",
                "da",
                "dos",
                "das",
                "seu",
                "sua",
                "nós",
                "pode",
                "poderia",
                "atenciosamente",
                "não",
                "muito",
                "meu",
                "está",
                "também",
                "pela",
                "pelo",
            ],
        }
    }
}

/// Frequent words of languages the drafter does not write (Italian, Dutch,
/// Polish, Swedish), which compete with the five.
const OTHER_LANGUAGES: &[&[&str]] = &[
    // Italian, Dutch, Polish, Swedish, without words English has too
    // ("per", "come", "non", "van", "w"), so English is never taken for them.
    &[
        "il",
        "che",
        "di",
        "sono",
        "ciao",
        "grazie",
        "gli",
        "della",
        "questo",
        "hai",
        "ho",
        "stai",
        "buongiorno",
        "cordiali",
        "saluti",
        "abbraccio",
        "anche",
        "perché",
        "vorrei",
    ],
    &[
        "het",
        "een",
        "ik",
        "je",
        "jij",
        "niet",
        "voor",
        "met",
        "bedankt",
        "groeten",
        "hoi",
        "graag",
        "kun",
        "wij",
        "ons",
        "dank",
        "alvast",
        "vriendelijke",
    ],
    &[
        "jest",
        "nie",
        "się",
        "dla",
        "proszę",
        "dziękuję",
        "dzień",
        "dobry",
        "pozdrawiam",
        "czy",
        "że",
        "mnie",
        "poważaniem",
        "tym",
        "przesłanie",
        "kopii",
    ],
    &[
        "och",
        "att",
        "det",
        "jag",
        "inte",
        "för",
        "med",
        "tack",
        "hej",
        "hälsningar",
        "vänliga",
        "är",
        "kan",
        "du",
        "mig",
        "vi",
    ],
];

/// The language of `subject` and `text`: the one whose marker words occur
/// most, if it clearly leads. `None`: another language, or too little text
/// to tell (then the caller decides; see [`detect_or_english`]).
pub fn detect(subject: &str, text: &str) -> Option<Language> {
    let sample = format!("{subject}\n{}", text_excerpt(text)).to_lowercase();
    let words: Vec<&str> = sample
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    let mut scores: Vec<(Language, usize)> = Language::ALL
        .iter()
        .map(|language| {
            let markers = language.markers();
            let hits = words.iter().filter(|word| markers.contains(word)).count();
            (*language, hits)
        })
        .collect();
    scores.sort_by_key(|score| std::cmp::Reverse(score.1));
    let (best, hits) = scores[0];
    let runner_up = scores[1].1;
    // A language the drafter does not write that reads better than the
    // five (Italian shares words with Spanish, Polish and Dutch with
    // Portuguese and French): none of the five.
    let other = OTHER_LANGUAGES
        .iter()
        .map(|markers| words.iter().filter(|word| markers.contains(word)).count())
        .max()
        .unwrap_or(0);
    if other >= 2 && other >= hits {
        return None;
    }
    // At least two marker words, and more than the next language: short
    // words shared between Spanish and Portuguese (`que`, `para`) must not
    // decide alone. Letters no other of the five uses settle a tie.
    if hits >= 2 && hits > runner_up {
        return Some(best);
    }
    if hits >= 2 && hits == runner_up {
        let tied: Vec<Language> = scores
            .iter()
            .filter(|(_, score)| *score == hits)
            .map(|(language, _)| *language)
            .collect();
        let by_letters = distinctive_letters(&sample);
        if let Some(language) = by_letters.filter(|language| tied.contains(language)) {
            return Some(language);
        }
    }
    None
}

/// The language for a reply when [`detect`] cannot tell: a message with
/// (nearly) no words in any language, e.g. only a link, is answered in
/// English; one that reads as another language is not (`None`).
pub fn detect_or_english(subject: &str, text: &str) -> Option<Language> {
    if let Some(language) = detect(subject, text) {
        return Some(language);
    }
    // Another language only on evidence of one (its words ahead of
    // English's, or letters only the five use); else English.
    let sample = format!("{subject}\n{}", text_excerpt(text)).to_lowercase();
    let words: Vec<&str> = sample
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    let count = |markers: &[&str]| words.iter().filter(|word| markers.contains(word)).count();
    let english = count(Language::English.markers());
    let other = OTHER_LANGUAGES
        .iter()
        .map(|markers| count(markers))
        .max()
        .unwrap_or(0);
    let foreign = (other >= 2 && other >= english) || distinctive_letters(&sample).is_some();
    (!foreign).then_some(Language::English)
}

/// Letters that mark one of the five: ß/ä/ö/ü German, ñ/¿/¡ Spanish,
/// ã/õ Portuguese, è/ê/à/ç French (ç is also Portuguese: French wins it only
/// with è/ê/à).
fn distinctive_letters(text: &str) -> Option<Language> {
    let has = |letters: &[char]| text.chars().any(|c| letters.contains(&c));
    if has(&['ß', 'ä', 'ö', 'ü']) {
        Some(Language::German)
    } else if has(&['ñ', '¿', '¡']) {
        Some(Language::Spanish)
    } else if has(&['ã', 'õ']) {
        Some(Language::Portuguese)
    } else if has(&['è', 'ê', 'à', 'ù']) {
        Some(Language::French)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_language_is_told_apart() {
        for (language, subject, text) in [
            (
                Language::English,
                "Quick question",
                "Hi Ann, could you send me the report for this week? Thanks",
            ),
            (
                Language::German,
                "Rechnung März",
                "Hallo Ann, könnten Sie mir bitte die Rechnung für März schicken? Danke und viele Grüße",
            ),
            (
                Language::French,
                "Rendez-vous",
                "Bonjour Ann, pouvez-vous me confirmer le rendez-vous de mardi ? Merci, cordialement",
            ),
            (
                Language::Spanish,
                "Factura",
                "Hola Ann, ¿me puedes enviar la factura del mes pasado? Muchas gracias y saludos",
            ),
            (
                Language::Portuguese,
                "Reunião",
                "Olá Ann, você pode me enviar o contrato? Muito obrigado, atenciosamente",
            ),
        ] {
            assert_eq!(detect(subject, text), Some(language), "{text}");
        }
    }

    #[test]
    fn another_language_or_no_words_are_said_so() {
        assert_eq!(
            detect(
                "Vraag",
                "Hoi Ann, kun je mij de factuur van vorige maand sturen? Bedankt en groeten"
            ),
            None,
            "Dutch is none of the five"
        );
        assert_eq!(
            detect_or_english("", "https://example.com/x"),
            Some(Language::English)
        );
        for english in [
            (
                "Quarterly report request",
                "Can you do it as soon as possible?",
            ),
            ("Visit", "Per our call, can you come by? Non-urgent."),
            (
                "Re: plan",
                "Looks good. Ship it by Friday, e.g. after the review.",
            ),
        ] {
            assert_eq!(
                detect_or_english(english.0, english.1),
                Some(Language::English),
                "{english:?}"
            );
        }
        assert_eq!(
            detect_or_english(
                "Vraag",
                "Hoi Ann, kun je mij de factuur van vorige maand sturen? Bedankt en groeten"
            ),
            None
        );
    }
}
