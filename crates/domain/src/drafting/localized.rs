//! The built-in drafter in German, French, Spanish and Portuguese: a few
//! words per language pick the reply's type, and a short template per type
//! answers in the message's own language (English has the full rule set,
//! in `builtin`).

use super::builtin::{closing, greeting_name, topic};
use super::language::Language;
use super::{DraftRequest, DraftType, text_excerpt};

/// Words (lower case, matched inside the text) that make a message of this
/// type, per language.
struct Cues {
    scheduling: &'static [&'static str],
    documents: &'static [&'static str],
    thanks: &'static [&'static str],
}

fn cues(language: Language) -> Cues {
    match language {
        Language::German => Cues {
            scheduling: &[
                "termin",
                "treffen",
                "besprechung",
                "meeting",
                "kalender",
                "uhr",
            ],
            documents: &[
                "rechnung",
                "dokument",
                "unterlagen",
                "vertrag",
                "angebot",
                "datei",
                "pdf",
            ],
            thanks: &["vielen dank", "herzlichen dank", "danke für"],
        },
        Language::French => Cues {
            scheduling: &[
                "rendez-vous",
                "réunion",
                "rencontre",
                "disponible",
                "calendrier",
                "créneau",
            ],
            documents: &["facture", "document", "contrat", "devis", "fichier", "pdf"],
            thanks: &["merci beaucoup", "merci pour", "un grand merci"],
        },
        Language::Spanish => Cues {
            scheduling: &[
                "reunión",
                "cita",
                "llamada",
                "disponible",
                "calendario",
                "agenda",
            ],
            documents: &[
                "factura",
                "documento",
                "contrato",
                "presupuesto",
                "archivo",
                "pdf",
            ],
            thanks: &["muchas gracias", "gracias por", "mil gracias"],
        },
        Language::Portuguese => Cues {
            scheduling: &[
                "reunião",
                "encontro",
                "agenda",
                "disponível",
                "calendário",
                "horário",
            ],
            documents: &[
                "fatura",
                "documento",
                "contrato",
                "orçamento",
                "arquivo",
                "ficheiro",
                "pdf",
            ],
            thanks: &[
                "muito obrigado",
                "muito obrigada",
                "obrigado pela",
                "obrigada pela",
                "obrigado pelo",
            ],
        },
        Language::English => Cues {
            scheduling: &[],
            documents: &[],
            thanks: &[],
        },
    }
}

/// The reply's type: scheduling, a document asked for, a question, thanks,
/// else a plain reply.
pub(super) fn classify(language: Language, subject: &str, text: &str) -> DraftType {
    let haystack = format!("{subject}\n{}", text_excerpt(text)).to_lowercase();
    let cues = cues(language);
    let has = |words: &[&str]| words.iter().any(|word| haystack.contains(word));
    let asks = haystack.contains('?');
    if has(cues.scheduling) {
        DraftType::Scheduling
    } else if has(cues.documents) && asks {
        DraftType::DocumentRequest
    } else if asks {
        DraftType::Question
    } else if has(cues.thanks) {
        DraftType::ThankYou
    } else {
        DraftType::Reply
    }
}

/// The reply in `language`: greeting, one paragraph for the type, closing.
pub(super) fn render(language: Language, kind: DraftType, request: &DraftRequest) -> String {
    let name = greeting_name(request);
    let topic = topic(&request.subject);
    let quoted = |before: &str, open: &str, close: &str| {
        topic
            .as_deref()
            .map(|topic| format!("{before}{open}{topic}{close}"))
            .unwrap_or_default()
    };
    let (greeting, paragraph, words) = match language {
        Language::German => {
            let about = quoted(" zu ", "„", "“");
            let paragraph = match kind {
                DraftType::Scheduling => format!(
                    "vielen Dank für Ihre Nachricht{about}. Ich prüfe meinen Kalender und melde mich in Kürze mit passenden Terminen."
                ),
                DraftType::DocumentRequest => format!(
                    "vielen Dank für Ihre Nachricht{about}. Ich schicke Ihnen die gewünschten Unterlagen in Kürze."
                ),
                DraftType::Question => format!(
                    "vielen Dank für Ihre Frage{about}. Ich sehe mir das an und melde mich bald mit einer Antwort."
                ),
                DraftType::ThankYou => "vielen Dank für Ihre freundlichen Worte. Melden Sie sich gern, wenn ich noch etwas tun kann.".to_owned(),
                _ => format!(
                    "vielen Dank für Ihre Nachricht{about}. Ich habe sie gelesen und melde mich bald ausführlich."
                ),
            };
            let greeting = match name {
                Some(name) => format!("Hallo {name},"),
                None => "Guten Tag,".to_owned(),
            };
            (greeting, paragraph, "Viele Grüße")
        }
        Language::French => {
            let about = quoted(" concernant ", "« ", " »");
            let paragraph = match kind {
                DraftType::Scheduling => format!(
                    "Merci pour votre message{about}. Je vérifie mon agenda et je reviens vers vous rapidement avec des créneaux."
                ),
                DraftType::DocumentRequest => format!(
                    "Merci pour votre message{about}. Je vous envoie les documents demandés très prochainement."
                ),
                DraftType::Question => format!(
                    "Merci pour votre question{about}. Je regarde cela et je reviens vers vous rapidement avec une réponse."
                ),
                DraftType::ThankYou => "Merci beaucoup pour votre gentil message. N'hésitez pas à revenir vers moi si je peux faire autre chose.".to_owned(),
                _ => format!(
                    "Merci pour votre message{about}. Je l'ai bien lu et je reviens vers vous rapidement."
                ),
            };
            let greeting = match name {
                Some(name) => format!("Bonjour {name},"),
                None => "Bonjour,".to_owned(),
            };
            (greeting, paragraph, "Cordialement,")
        }
        Language::Spanish => {
            let about = quoted(" sobre ", "«", "»");
            let paragraph = match kind {
                DraftType::Scheduling => format!(
                    "Gracias por tu mensaje{about}. Reviso mi agenda y te propongo algunos horarios en breve."
                ),
                DraftType::DocumentRequest => format!(
                    "Gracias por tu mensaje{about}. Te envío los documentos que pides en breve."
                ),
                DraftType::Question => format!(
                    "Gracias por tu pregunta{about}. Lo reviso y te respondo pronto."
                ),
                DraftType::ThankYou => "Muchas gracias por tus amables palabras. No dudes en escribirme si puedo ayudarte en algo más.".to_owned(),
                _ => format!(
                    "Gracias por tu mensaje{about}. Lo he leído y te responderé con más detalle pronto."
                ),
            };
            let greeting = match name {
                Some(name) => format!("Hola {name}:"),
                None => "Hola:".to_owned(),
            };
            (greeting, paragraph, "Saludos,")
        }
        Language::Portuguese | Language::English => {
            let about = quoted(" sobre ", "“", "”");
            let paragraph = match kind {
                DraftType::Scheduling => format!(
                    "Obrigado pela sua mensagem{about}. Vou verificar a minha agenda e retorno em breve com alguns horários."
                ),
                DraftType::DocumentRequest => format!(
                    "Obrigado pela sua mensagem{about}. Envio os documentos solicitados em breve."
                ),
                DraftType::Question => format!(
                    "Obrigado pela sua pergunta{about}. Vou verificar e retorno em breve com uma resposta."
                ),
                DraftType::ThankYou => "Muito obrigado pelas suas palavras gentis. Fico à disposição se puder ajudar em mais alguma coisa.".to_owned(),
                _ => format!(
                    "Obrigado pela sua mensagem{about}. Já a li e retorno em breve com mais detalhes."
                ),
            };
            let greeting = match name {
                Some(name) => format!("Olá {name},"),
                None => "Olá,".to_owned(),
            };
            (greeting, paragraph, "Atenciosamente,")
        }
    };
    format!("{greeting}\n\n{paragraph}\n\n{}", closing(words, request))
}
