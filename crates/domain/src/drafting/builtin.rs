//! The built-in drafter: deterministic rules read a message, give it a
//! type, and fill that type's reply template.

use super::phrases::*;
use super::*;
use crate::drafting::language::Language;

/// The built-in drafter: deterministic rules give a type, then that type's
/// template.
pub fn builtin_draft(request: &DraftRequest) -> GeneratedDraft {
    let language = super::language::detect_or_english(&request.subject, &request.text)
        .unwrap_or(Language::English);
    builtin_draft_in(request, language)
}

/// [`builtin_draft`] in `language` (the one the message is written in),
/// ending with the person's signature when they have one.
pub fn builtin_draft_in(request: &DraftRequest, language: Language) -> GeneratedDraft {
    // The person's own greeting and sign-off, when they write in this
    // language.
    let own = request.style.as_ref().filter(|style| {
        style
            .languages
            .first()
            .is_none_or(|code| code == language.code())
    });
    let (kind, body) = match language {
        Language::English => {
            let classification = classify(&request.subject, &request.text);
            (classification.kind, render(&classification, request))
        }
        other => {
            let kind = super::localized::classify(other, &request.subject, &request.text);
            (kind, super::localized::render(other, kind, request))
        }
    };
    let body = match own {
        Some(style) => in_own_words(&body, style, greeting_name(request).as_deref()),
        None => body,
    };
    GeneratedDraft {
        label: DraftLabel::known(kind),
        body: with_signature(body, request.signature.as_deref()),
        generator: BUILTIN_GENERATOR.to_owned(),
        tokens: None,
        confidence: None,
    }
}

/// A built-in reply with the person's greeting ("Hey Bob,") and closing
/// line ("Cheers,") in place of the template's.
fn in_own_words(body: &str, style: &super::style::StyleProfile, name: Option<&str>) -> String {
    let mut paragraphs: Vec<String> = body.split("\n\n").map(str::to_owned).collect();
    if let (Some(greeting), Some(first)) = (&style.greeting, paragraphs.first_mut()) {
        *first = match name {
            Some(name) => format!("{} {name},", greeting.trim()),
            None => format!("{},", greeting.trim()),
        };
    }
    if let (Some(sign_off), Some(last)) = (&style.sign_off, paragraphs.last_mut()) {
        let mut lines: Vec<String> = last.lines().map(str::to_owned).collect();
        if let Some(closing) = lines.first_mut() {
            *closing = sign_off.trim().to_owned();
        }
        *last = lines.join("\n");
    }
    paragraphs.join("\n\n")
}

/// `body`, then the person's signature as Gmail would add it (after a blank
/// line), unless the body already ends with it.
pub fn with_signature(body: String, signature: Option<&str>) -> String {
    match signature
        .map(str::trim)
        .filter(|signature| !signature.is_empty())
    {
        Some(signature) if !body.trim_end().ends_with(signature) => {
            format!("{}\n\n{signature}", body.trim_end())
        }
        _ => body,
    }
}

/// The type [`builtin_draft`] gives a message with this subject and text.
pub fn builtin_classify(subject: &str, text: &str) -> DraftType {
    classify(subject, text).kind
}

/// The first name to greet: the display name's first word ("Zoë Martin" and
/// "Martin, Zoë" give "Zoë"), else the address's local part capitalised when
/// it looks like a name, else `None` (greet with "Hello,").
pub fn greeting_name(request: &DraftRequest) -> Option<String> {
    match request.sender_name.as_deref().map(one_line) {
        Some(display) if !display.is_empty() && !display.contains('@') => {
            // A display name that is there but not a person's ("Acme
            // Support") says more than the address does: no name.
            name_from_display(&display)
        }
        _ => name_from_address(&request.sender_address),
    }
}

fn name_from_display(display: &str) -> Option<String> {
    let display = display.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
    let lower = display.to_lowercase();
    if lower
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| NOT_A_PERSON.contains(&word))
    {
        return None;
    }
    // Outlook's directory format is "Last, First".
    let given = match display.split_once(',') {
        Some((_, given)) => {
            let first = bare_word(given.split_whitespace().next().unwrap_or(""));
            if first.is_empty() || NAME_SUFFIXES.contains(&first.to_lowercase().as_str()) {
                display
            } else {
                given
            }
        }
        None => display,
    };
    let mut words = given
        .split_whitespace()
        .map(bare_word)
        .filter(|w| !w.is_empty());
    let mut first = words.next()?;
    if TITLES.contains(&first.to_lowercase().as_str())
        && let Some(next) = words.next()
    {
        first = next;
    }
    looks_like_name(first).then(|| first.to_owned())
}

fn name_from_address(address: &str) -> Option<String> {
    let local = address
        .trim()
        .rsplit_once('@')
        .map_or("", |(local, _)| local);
    let local = local.split('+').next().unwrap_or("");
    let lower = local.to_lowercase();
    if NOT_A_PERSON.contains(&lower.as_str()) {
        return None;
    }
    let letters_only =
        |part: &str| part.chars().count() >= 2 && part.chars().all(char::is_alphabetic);
    if letters_only(local) && local.chars().count() <= 20 {
        return Some(capitalised(local));
    }
    // first.last@ is as common as a bare first name.
    let parts: Vec<&str> = local.split('.').collect();
    if (2..=3).contains(&parts.len())
        && parts.iter().all(|part| letters_only(part))
        && !NOT_A_PERSON.contains(&parts[0].to_lowercase().as_str())
    {
        return Some(capitalised(parts[0]));
    }
    None
}

fn bare_word(word: &str) -> &str {
    word.trim_matches(|c: char| !c.is_alphanumeric())
}

fn looks_like_name(word: &str) -> bool {
    word.chars().filter(|c| c.is_alphabetic()).count() >= 2
        && word.chars().count() <= 30
        && word.chars().next().is_some_and(char::is_alphabetic)
        && word
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '’' | '.'))
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

pub(super) fn capitalise_first(text: &mut String) {
    if let Some(first) = text.chars().next()
        && first.is_lowercase()
    {
        let upper: String = first.to_uppercase().collect();
        text.replace_range(..first.len_utf8(), &upper);
    }
}

/// Whitespace and control characters (folded headers, CR) as single spaces.
pub(super) fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Strips leading `Re:`/`Re[n]:` prefixes, and `Fwd:`/`Fw:` too when
/// `forwards` (for naming the topic, not for the reply subject).
pub(super) fn strip_prefixes(subject: &str, forwards: bool) -> &str {
    let mut rest = subject.trim();
    loop {
        let next = strip_prefix(rest, "re").or_else(|| {
            if forwards {
                strip_prefix(rest, "fwd").or_else(|| strip_prefix(rest, "fw"))
            } else {
                None
            }
        });
        match next {
            Some(after) => rest = after.trim_start(),
            None => return rest,
        }
    }
}

/// `text` after `word` (ASCII, any case), an optional `[n]`, optional spaces
/// and a colon.
fn strip_prefix<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    if !head.eq_ignore_ascii_case(word) {
        return None;
    }
    let mut rest = &text[word.len()..];
    if let Some(inner) = rest.strip_prefix('[') {
        let close = inner.find(']')?;
        if close == 0 || !inner[..close].chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        rest = &inner[close + 1..];
    }
    rest.trim_start_matches(' ').strip_prefix(':')
}

/// Subjects quoted in a template are cut here, at a word where possible.
pub(super) const TOPIC_MAX_CHARS: usize = 80;

/// The subject as a template names it: one line, without reply/forward
/// prefixes, shortened; `None` when there is nothing left.
pub(super) fn topic(subject: &str) -> Option<String> {
    let flat = one_line(subject);
    let rest = strip_prefixes(&flat, true);
    (!rest.is_empty()).then(|| shorten(rest, TOPIC_MAX_CHARS))
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max_chars).collect();
    // Prefer a word boundary when one is close to the limit.
    let cut = match cut.rfind(' ') {
        Some(space) if cut[space..].chars().count() <= 20 => &cut[..space],
        _ => cut.as_str(),
    };
    let cut =
        cut.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-'));
    format!("{cut}…")
}

// ---------------------------------------------------------------------------
// Classification

pub(super) struct Classification {
    pub(super) kind: DraftType,
    /// What the template mentions: the document asked for, or the question.
    pub(super) detail: Option<String>,
}

/// The message as the rules read it.
struct Reading {
    /// Subject and new content (no quoted reply, no signature), lower case,
    /// with the things a sender thanks for blanked out, so "thanks for the
    /// reminder" is not a reminder.
    haystack: String,
    /// Content lines in their own case, greeting dropped.
    lines: Vec<String>,
    /// How many of `lines` are content rather than sign-off.
    content_len: usize,
    subject: String,
    subject_is_reply: bool,
}

fn read(subject: &str, text: &str) -> Reading {
    let subject = one_line(subject);
    let subject_is_reply = strip_prefix(&subject, "re").is_some();
    let mut lines = content_lines(text_excerpt(text));
    if lines.first().is_some_and(|line| is_greeting(line)) {
        lines.remove(0);
    }
    let content_len = sign_off_start(&lines);
    let mut haystack = normalised(&subject);
    for line in &lines {
        haystack.push('\n');
        haystack.push_str(&normalised(line));
    }
    let haystack = blank_thanked_things(&haystack).replace("for your information", "fyi");
    Reading {
        haystack,
        lines,
        content_len,
        subject,
        subject_is_reply,
    }
}

fn normalised(text: &str) -> String {
    text.to_lowercase().replace(['’', '‘'], "'")
}

/// The new part of a message: stops at a quoted reply's header or a
/// signature, skips quoted and empty lines.
fn content_lines(text: &str) -> Vec<String> {
    let raw: Vec<&str> = text.split(['\n', '\r']).map(str::trim).collect();
    let mut lines: Vec<String> = Vec::new();
    for (index, line) in raw.iter().enumerate() {
        if line.is_empty() || line.starts_with('>') {
            continue;
        }
        let lower = line.to_lowercase();
        if *line == "--" || *line == "__" || lower.starts_with("-----original message") {
            break;
        }
        if lower.starts_with("---------- forwarded message") {
            break;
        }
        if lower.ends_with("wrote:") {
            // Clients wrap a long "On …, X <x@y> wrote:" over two lines.
            if lines.last().is_some_and(|last| last.starts_with("On ")) {
                lines.pop();
            }
            break;
        }
        if lower.starts_with("from:") {
            let next = raw[index + 1..].iter().find(|l| !l.is_empty());
            if next.is_some_and(|next| {
                let next = next.to_lowercase();
                next.starts_with("sent:") || next.starts_with("date:")
            }) {
                break;
            }
        }
        if lower.starts_with("sent from my ") || lower.starts_with("get outlook for ") {
            continue;
        }
        lines.push((*line).to_owned());
    }
    lines
}

fn is_greeting(line: &str) -> bool {
    let lower = normalised(line);
    GREETINGS
        .iter()
        .any(|greeting| starts_with_phrase(&lower, greeting))
        && line.split_whitespace().count() <= 4
        && !line.contains('?')
}

/// Where the trailing run of short lines ("Thanks,", "Bob", "CEO, Acme")
/// begins, when something of substance comes before it; else `lines.len()`.
fn sign_off_start(lines: &[String]) -> usize {
    let short = |line: &String| line.split_whitespace().count() <= 3;
    let start = lines.len() - lines.iter().rev().take_while(|line| short(line)).count();
    if start == 0 { lines.len() } else { start }
}

/// Whether `phrase` occurs in `haystack` as whole words.
fn has_phrase(haystack: &str, phrase: &str) -> bool {
    phrase_at(haystack, phrase).next().is_some()
}

fn phrase_at<'a>(haystack: &'a str, phrase: &'a str) -> impl Iterator<Item = usize> + 'a {
    haystack.match_indices(phrase).filter_map(move |(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + phrase.len()..].chars().next();
        (!before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric))
            .then_some(at)
    })
}

fn starts_with_phrase(text: &str, phrase: &str) -> bool {
    text.starts_with(phrase)
        && !text[phrase.len()..]
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric)
}

fn has_any(haystack: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|phrase| has_phrase(haystack, phrase))
}

/// The phrase of `phrases` that occurs first in `haystack`.
fn first_of<'a>(haystack: &str, phrases: &[&'a str]) -> Option<&'a str> {
    phrases
        .iter()
        .filter_map(|phrase| phrase_at(haystack, phrase).next().map(|at| (at, *phrase)))
        .min_by_key(|(at, phrase)| (*at, std::cmp::Reverse(phrase.len())))
        .map(|(_, phrase)| phrase)
}

/// A `?` that ends a question, not one inside a URL's query.
fn has_question_mark(text: &str) -> bool {
    text.match_indices('?').any(|(at, _)| {
        text[at + 1..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || "?!.,)]\"'”’*".contains(c))
    })
}

/// Blanks what follows "thanks for", up to punctuation or six words.
fn blank_thanked_things(haystack: &str) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for thanks in THANKS {
        for at in phrase_at(haystack, thanks) {
            let mut rest = &haystack[at + thanks.len()..];
            for intensifier in THANKS_INTENSIFIERS {
                if let Some(after) = rest
                    .strip_prefix(' ')
                    .and_then(|r| r.strip_prefix(intensifier))
                {
                    rest = after;
                    break;
                }
            }
            let Some(object) = rest.strip_prefix(" for ") else {
                continue;
            };
            let start = haystack.len() - object.len();
            let mut end = object
                .find(|c: char| ".,!?;:\n".contains(c))
                .unwrap_or(object.len());
            let mut words = 0;
            let mut in_word = false;
            for (at, c) in object[..end].char_indices() {
                if c.is_whitespace() {
                    in_word = false;
                } else if !in_word {
                    in_word = true;
                    words += 1;
                    if words > 6 {
                        end = at;
                        break;
                    }
                }
            }
            ranges.push((start, start + end));
        }
    }
    haystack
        .char_indices()
        .map(|(at, c)| {
            if ranges
                .iter()
                .any(|(start, end)| (*start..*end).contains(&at))
            {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Whether the sender is thanking: "thanks" outside the sign-off, not "in
/// advance", not a form letter's "thank you for your order".
fn thanks_sincerely(reading: &Reading) -> bool {
    let mut candidates = vec![normalised(&reading.subject)];
    candidates.extend(
        reading.lines[..reading.content_len]
            .iter()
            .map(|l| normalised(l)),
    );
    candidates.iter().any(|text| {
        THANKS.iter().any(|thanks| {
            phrase_at(text, thanks).any(|at| {
                let mut rest = text[at + thanks.len()..].trim_start();
                if rest.starts_with("in advance") || rest.starts_with("in anticipation") {
                    return false;
                }
                for intensifier in THANKS_INTENSIFIERS {
                    if let Some(after) = rest.strip_prefix(intensifier) {
                        rest = after.trim_start();
                        break;
                    }
                }
                match rest.strip_prefix("for ") {
                    Some(object) => !ROUTINE_THANKS.iter().any(|r| starts_with_phrase(object, r)),
                    None => true,
                }
            })
        })
    })
}

/// The first question the sender asks, as a sentence, if it is short enough
/// to quote.
fn first_question(reading: &Reading) -> Option<String> {
    let from_lines = reading.lines.iter().find_map(|line| question_in(line));
    from_lines.or_else(|| {
        if reading.subject_is_reply {
            None
        } else {
            question_in(strip_prefixes(&reading.subject, true))
        }
    })
}

fn question_in(line: &str) -> Option<String> {
    let end = line.match_indices('?').find_map(|(at, _)| {
        line[at + 1..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || "?!.,)]\"'”’*".contains(c))
            .then_some(at + 1)
    })?;
    let start = line[..end - 1]
        .rfind(['.', '!', '?'])
        .map_or(0, |at| at + 1);
    let sentence = line[start..end].trim();
    let length = sentence.chars().count();
    (3..=200).contains(&length).then(|| sentence.to_owned())
}

/// The rules, most specific first. A message that delivers something is
/// acknowledged before anything it asks; a reminder or nudge is that before
/// it is about a meeting; sincere thanks win over what was thanked for.
fn classify(subject: &str, text: &str) -> Classification {
    let reading = read(subject, text);
    let h = reading.haystack.as_str();
    let plain = |kind| Classification { kind, detail: None };
    let asks_question = reading.lines.iter().any(|line| has_question_mark(line))
        || (!reading.subject_is_reply && has_question_mark(&reading.subject));

    if has_any(h, ACKNOWLEDGMENT) {
        return plain(DraftType::Acknowledgment);
    }
    if let Some(document) = first_of(h, DOCUMENTS)
        && has_any(h, DOCUMENT_ASKS)
    {
        return Classification {
            kind: DraftType::DocumentRequest,
            detail: Some(document_name(document).to_owned()),
        };
    }
    if has_any(h, REMINDER) {
        return plain(DraftType::Reminder);
    }
    if has_any(h, FOLLOW_UP) && !has_any(h, FOLLOW_UP_MEETINGS) {
        return plain(DraftType::FollowUp);
    }
    if !asks_question && !has_any(h, ASKS) && thanks_sincerely(&reading) {
        return plain(DraftType::ThankYou);
    }
    if has_any(h, INVITATION) {
        return plain(DraftType::Invitation);
    }
    if has_any(h, INTRODUCTION) {
        return plain(DraftType::Introduction);
    }
    if has_any(h, CONFIRMATION) {
        return plain(DraftType::Confirmation);
    }
    // "next week" alone is usually a promise ("I'll send it next week");
    // asked about, it is a time.
    if has_any(h, SCHEDULING) || (asks_question && has_phrase(h, "next week")) {
        return plain(DraftType::Scheduling);
    }
    if has_any(h, INFORMATION) {
        return Classification {
            kind: DraftType::InformationRequest,
            detail: first_question(&reading),
        };
    }
    if asks_question {
        return Classification {
            kind: DraftType::Question,
            detail: first_question(&reading),
        };
    }
    if has_any(h, UPDATE) {
        return plain(DraftType::Update);
    }
    plain(DraftType::Reply)
}

fn document_name(phrase: &str) -> &str {
    match phrase {
        "pdf" => "PDF",
        "pdfs" => "PDFs",
        "copy of" => "copy",
        other => other,
    }
}

// ---------------------------------------------------------------------------
// Templates

pub(super) fn render(classification: &Classification, request: &DraftRequest) -> String {
    let greeting = match greeting_name(request) {
        Some(name) => format!("Hi {name},"),
        None => "Hello,".to_owned(),
    };
    let topic = topic(&request.subject);
    let about = topic
        .as_deref()
        .map(|topic| format!(" about “{topic}”"))
        .unwrap_or_default();
    let on = topic
        .as_deref()
        .map(|topic| format!(" on “{topic}”"))
        .unwrap_or_default();
    // A question that is the whole subject is already named by `about`.
    let asked = classification
        .detail
        .as_deref()
        .map(one_line)
        .filter(|question| topic.as_deref() != Some(question.as_str()))
        .map(|question| format!(" You asked: “{question}”"))
        .unwrap_or_default();
    let paragraph = match classification.kind {
        DraftType::Reply => format!(
            "Thanks for your message{about}. I've read it and will get back to you properly soon."
        ),
        DraftType::Forward => format!(
            "Thanks for your message{about}. I'll pass it on to the right person and let you know once it's with them."
        ),
        DraftType::New => format!(
            "I'm getting in touch{about}. Let me know when would be a good time to talk it through."
        ),
        DraftType::InformationRequest => format!(
            "Thanks for getting in touch{about}.{asked} I'll gather the details and send them over shortly."
        ),
        DraftType::Acknowledgment => format!(
            "Thanks for your email{about}. I've received what you sent and will go through it shortly."
        ),
        DraftType::Scheduling => format!(
            "Thanks for getting in touch{about}. I'll check my calendar and come back to you with some times that work."
        ),
        DraftType::DocumentRequest => {
            let document = classification
                .detail
                .as_deref()
                .map_or_else(|| "document".to_owned(), one_line);
            format!(
                "Thanks for your message{about}. I'll get the {document} you asked for over to you shortly."
            )
        }
        DraftType::FollowUp => format!(
            "Thanks for following up{on}. I haven't forgotten, and you'll have an update from me shortly."
        ),
        DraftType::Confirmation => format!(
            "Thanks for your message{about}. I'll double-check the details and confirm shortly."
        ),
        DraftType::Question => format!(
            "Thanks for your question{about}.{asked} I'll look into it and get back to you with an answer soon."
        ),
        DraftType::ThankYou => format!(
            "Thank you for your kind note{about}. It was my pleasure, and don't hesitate to get in touch if there's anything else I can do."
        ),
        DraftType::Invitation => {
            // Calendar invitations put "Invitation:" in the subject.
            let event = topic.as_deref().map(|topic| {
                ["updated invitation:", "invitation:"]
                    .iter()
                    .find_map(|prefix| {
                        let head = topic.get(..prefix.len())?;
                        head.eq_ignore_ascii_case(prefix)
                            .then(|| topic[prefix.len()..].trim_start())
                    })
                    .unwrap_or(topic)
            });
            let to = event
                .filter(|event| !event.is_empty())
                .map(|event| format!(" to “{event}”"))
                .unwrap_or_default();
            format!(
                "Thank you for the invitation{to}. I'll check my schedule and let you know shortly whether I can make it."
            )
        }
        DraftType::Reminder => {
            format!("Thanks for the reminder{about}. It's on my list and I'll take care of it.")
        }
        DraftType::Update => format!(
            "Thanks for the update{on}. Good to know; I'll reach out if I have any questions."
        ),
        DraftType::Introduction => format!(
            "Thank you for your email{about} and for the introduction. I'm glad to be connected and will follow up to find a time to talk."
        ),
    };
    format!(
        "{greeting}\n\n{paragraph}\n\n{}",
        closing("Best regards,", request)
    )
}

/// The closing line, then the person's name unless their signature says it.
pub(super) fn closing(words: &str, request: &DraftRequest) -> String {
    let signed = request
        .signature
        .as_deref()
        .is_some_and(|signature| !signature.trim().is_empty());
    match request.owner_name.as_deref().map(one_line) {
        Some(name) if !name.is_empty() && !signed => format!("{words}\n{name}"),
        _ => words.to_owned(),
    }
}
