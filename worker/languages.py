"""Language packs: the built-in opt-out, opt-in and help vocabulary of each language, as data.

A pack holds, for one language:

* keyword rules per intent, each with a match mode. Unambiguous keywords (STOP, ARRET, BAJA,
  ABMELDEN...) match in ``leading`` mode, so "STOP ACME" and "stop please" opt out. Words that are
  also everyday words, here or in another pack ("fin", "alto", "basta", "ende", "alta"), match in
  leading mode without brands: alone or with courtesy words only ("ALTO por favor"), so "fin de
  semana" and "alto riesgo" are chat. "para" (also a preposition) matches only alone (``exact``).
  Yes/no words ("si", "ja", "yes", "no") are never keywords: they answer every other question too.
* ``courtesy``: words that may follow or precede a leading keyword ("please", "por favor", "merci").
* ``ordinary``: words that show a leading keyword starts an ordinary sentence ("stop *by* later",
  "cancel *my* order", "start *date*", "arrêt *de bus*"): one of them after the keyword vetoes it.
* ``phrases``: regular expressions of phrased requests ("please remove me from your list", "no
  more texts", "ne m'envoyez plus de SMS"), each with trigger words, one of which is in every text
  the expression can match: the classifier runs the expressions only when a trigger is present.
* ``negations``: cues that, just before a phrase in the same clause, turn it around ("I don't want
  to opt out", "no me den de baja", "je ne veux pas me désabonner").
* ``replies``: confirmation and help texts in the language (each at most 160 characters once
  ``{sender}`` is filled in, as the Canadian CWTA rules require for STOP/ARRET).

Texts here are in normalized form (lower case, single spaces, ``'`` for apostrophes) because the
classifier matches normalized text. Accent-less spellings of keywords and trigger words
("arret", "desabonner") are added when the rules are compiled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from worker.model import Intent, Language, MatchMode
from worker.normalize import strip_accents, tokens


@dataclass(frozen=True, slots=True)
class KeywordGroup:
    """Keywords of one intent that share a rule name and a match mode."""

    name: str
    intent: Intent
    mode: MatchMode
    keywords: tuple[str, ...]
    all_channels: bool = False
    brands: bool = True
    """Whether a leading keyword may be followed by an unknown word (a brand: "STOP ACME"). False
    for words that are also everyday words ("alto", "fin", "basta"): only courtesy words, numbers
    and emoji may follow them ("ALTO por favor"), so "fin semana" and "alto riesgo" stay chat."""


@dataclass(frozen=True, slots=True)
class Phrase:
    """A phrased request: a regular expression on normalized text and its trigger words."""

    intent: Intent
    pattern: str
    triggers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LanguagePack:
    language: Language
    keywords: tuple[KeywordGroup, ...]
    phrases: tuple[Phrase, ...]
    courtesy: frozenset[str]
    ordinary: frozenset[str]
    conjunctions: frozenset[str]
    """"and": after a leading keyword only when a courtesy word follows ("STOP please and thank you")."""
    negations: str
    """A regular expression matching one negation cue word (searched in a few words of text)."""
    replies: Mapping[Intent, str]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _any_of(words: tuple[str, ...]) -> str:
    """A regex group matching any of ``words``: one tuple is both a phrase's alternatives and its
    triggers, so the two cannot drift apart."""
    return "(?:" + "|".join(map(re.escape, words)) + ")"


def _p(intent: Intent, heads: str, rest: str, triggers: tuple[str, ...] | None = None) -> tuple[Phrase, ...]:
    """Phrases that start with one of the literal ``heads`` ("|"-separated) and go on with ``rest``.

    A literal first and the word-boundary check after it (a look-behind) lets the regex engine
    jump from one occurrence of the literal to the next instead of trying every position: about
    ten times faster than ``\b(?:a|b) ...``. Each head (and its accent-less spelling) is its own
    phrase, triggered by its first word.
    """
    out = []
    for head in heads.split("|"):
        for variant in dict.fromkeys((head, strip_accents(head))):
            literal = re.escape(variant)
            words = triggers or (tokens(variant)[0].decode(),)
            out.append(Phrase(intent, rf"{literal}(?<!\w{literal}){rest}", words))
    return tuple(out)


_O, _I, _H = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP
_EXACT, _LEADING = MatchMode.EXACT, MatchMode.LEADING

# Message nouns reused by several English expressions.
_EN_MSGS = (
    r"(?:texts?|text messages|messages?|msgs?|sms|spam|promos?|promotions?|notifications?|alerts?|"
    r"marketing|offers|ads|emails?)"
)
#: The words of _EN_MSGS, as triggers: a phrase that needs one of these nouns is only worth trying
#: when one is there. Far rarer in chat than "again", "back" or "help" ("call me back please").
_EN_MSG_WORDS = (
    "text", "texts", "messages", "message", "msg", "msgs", "sms", "spam", "promo", "promos", "promotion",
    "promotions", "notification", "notifications", "alert", "alerts", "marketing", "offers", "ads", "email",
    "emails",
)  # fmt: skip

ENGLISH = LanguagePack(
    language=Language.EN,
    keywords=(
        KeywordGroup(
            "stop",
            _O,
            _LEADING,
            (
                "STOP",
                "UNSUBSCRIBE",
                "CANCEL",
                "END",
                "QUIT",
                "REVOKE",
                "OPTOUT",
                "OPT OUT",
                "OPT-OUT",
                "UNSUB",
                "REMOVE",
            ),
        ),
        KeywordGroup("stop_all", _O, _LEADING, ("STOPALL", "STOP ALL"), all_channels=True),
        KeywordGroup("start", _I, _LEADING, ("START", "UNSTOP", "SUBSCRIBE", "RESUBSCRIBE")),
        KeywordGroup("start", _I, _LEADING, ("RESUME",), brands=False),
        KeywordGroup("help", _H, _LEADING, ("HELP", "INFO")),
    ),
    phrases=(
        *_p(
            _O,
            "remove|delete|erase|unsubscribe|unenroll|unenrol|opt",
            r" (?:me|us|my (?:phone number|number|phone|cell|name|details|info|contact info))\b",
        ),
        *_p(_O, "take|get|drop|cross", r" (?:me|us|my (?:number|name)) off\b", ("off",)),
        *_p(_O, "opt|opting", r"(?: me| us)?[ -]?out\b"),
        *_p(_O, "optout|unsubscribe|unsub", r"\b"),
        *_p(_O, "no more|no further", rf" {_EN_MSGS}\b", _EN_MSG_WORDS),
        *_p(
            _O,
            "stop|quit|cease|end|halt",
            r" (?:(?:texting|txting|messaging|sending|contacting|calling|spamming|emailing|bothering|"
            r"harassing|"
            rf"sms)\b|(?:(?:all|the|these|those|your|this|any) )?{_EN_MSGS}\b)",
            (
                "texting",
                "txting",
                "messaging",
                "sending",
                "contacting",
                "calling",
                "spamming",
                "emailing",
                "bothering",
                "harassing",
                *_EN_MSG_WORDS,
            ),
        ),
        *_p(
            _O,
            "don't|dont|do not|never",
            r" (?:text|txt|message|msg|contact|sms|spam|email) (?:me|us|this number)\b",
            ("text", "txt", "message", "msg", "contact", "sms", "spam", "email"),
        ),
        *_p(
            _O,
            "don't|dont|do not",
            r" (?:send|want)(?: me)?(?: to (?:receive|get))?(?: any)?(?: more| further)?(?: of)?"
            rf"(?: these| your| the| this)? {_EN_MSGS}\b",
            _EN_MSG_WORDS,
        ),
        *_p(_O, "no longer", r" (?:want|wish|need)\b", ("longer",)),
        *_p(
            _O,
            "cancel",
            rf" (?:(?:all|the|these|those|your|this|my|any) )?(?:text |sms )?{_EN_MSGS}\b",
            _EN_MSG_WORDS,
        ),
        *_p(
            _O,
            "want out|out of",
            r"(?: (?:this|your|the|ur))? (?:list|mailing list|texts|messages)\b",
            ("out",),
        ),
        *_p(
            _O,
            "revoke|withdraw",
            r" (?:my |all )?(?:consent|permission|subscription)\b",
            ("consent", "permission", "subscription"),
        ),
        *_p(_O, "to be removed", r"\b", ("removed",)),
        *_p(
            _O,
            "stop receiving|stop getting",
            rf" (?:these|this|them|your|any|the|{_EN_MSGS})\b",
            ("receiving", "getting"),
        ),
        *_p(_O, "leave me alone|lose my number|lose this number", r"\b", ("alone", "lose")),
        *_p(_O, "said|told you|told you to|asked you to|asked to", r" (?:stop|unsubscribe|quit|cancel)\b"),
        *_p(_I, "resubscribe|re-subscribe", r"\b"),
        *_p(_I, "subscribe|sign|add|opt|put", r" (?:me|us) (?:back|again)\b"),
        *_p(_I, "opt in|opt-in|optin|opt me in|opt me back in|opt back in", r"\b", ("opt", "optin")),
        Phrase(_I, r"\b(?:want|like|wish|would love) to (?:re)?subscribe\b", ("subscribe", "resubscribe")),
        *_p(
            _I,
            "start|resume",
            rf" (?:sending|texting|messaging) (?:me )?(?:again|{_EN_MSGS})\b",
            ("sending", "texting", "messaging"),
        ),
        *_p(_I, "receive|get", rf" (?:your |the |these |those |)(?:text )?{_EN_MSGS} again\b", _EN_MSG_WORDS),
        *_p(
            _H,
            "help",
            r" (?:with|about|on|for) (?:this|these|the|your|my|ur) (?:\w+ )?"
            rf"(?:service|program|subscription|{_EN_MSGS})\b",
            ("service", "program", "subscription", *_EN_MSG_WORDS),
        ),
    ),
    courtesy=_words(
        "please pls plz plse pleas thanks thank you thx ty tq tnx now asap immediately right already all "
        "everything me us ok okay k just again sir madam kindly permanently forever guys cheers"
    ),
    ordinary=_words(
        "by it the an at in on to for of with and or but if so when what where why how who which is are "
        "was were be been am do does did can could will would should have has had my your our their his "
        "her its this that i we he she they date time order orders appointment booking reservation "
        "payment meeting delivery shipment class flight trip ticket card account transaction smoking "
        "worrying later tomorrow tonight soon here there then up down about over after before game line "
        "point don didn doesn won can't cannot not no never"
    ),
    conjunctions=_words("and"),
    negations=r"\b(?:don't|dont|do not|doesn't|didn't|did not|never|not|won't|wont|can't|cannot)\b",
    replies={
        _O: "You are unsubscribed and will get no more messages from {sender}. Reply START to resubscribe.",
        _I: "You are subscribed again to messages from {sender}. Reply STOP to unsubscribe, HELP for help.",
        _H: "Reply STOP to unsubscribe or START to resubscribe. Msg&data rates may apply.",
    },
)

_ES_MSG_WORDS = (
    "mensajes", "sms", "textos", "mensajitos", "promociones", "publicidad", "ofertas", "correos",
    "notificaciones", "alertas",
)  # fmt: skip
_ES_MSGS = _any_of(_ES_MSG_WORDS)

SPANISH = LanguagePack(
    language=Language.ES,
    keywords=(
        KeywordGroup(
            "stop", _O, _LEADING, ("BAJA", "CANCELAR", "DETENER", "DESUSCRIBIR", "DESUSCRIBIRME", "PARAR")
        ),
        KeywordGroup("stop", _O, _LEADING, ("ALTO", "FIN", "BASTA", "NO MÁS", "NO MAS"), brands=False),
        KeywordGroup("stop", _O, _EXACT, ("PARA",)),
        KeywordGroup("start", _I, _LEADING, ("SUSCRIBIR", "SUSCRIBIRME")),
        KeywordGroup("start", _I, _LEADING, ("ALTA", "COMENZAR", "INICIAR"), brands=False),
        KeywordGroup("help", _H, _LEADING, ("AYUDA",)),
    ),
    phrases=(
        # "dar de baja mi tarjeta" cancels a card: an object after "de baja" is not about messages.
        Phrase(
            _O,
            r"\b(?:d[aáée]\w*|doy) de baja\b(?! (?:mi|mis|la|el|un|una|los|las|tu|su|sus|este|esta)\b)",
            ("baja",),
        ),
        *_p(
            _O,
            "no quiero que|ya no quiero que",
            r" (?:me |nos )?(?:escrib|env[ií]|mand|contact|llam)\w*",
            ("que",),
        ),
        *_p(_O, "cancelar", r" (?:la |mi |tu |su )?suscripci[oó]n\b", ("suscripción",)),
        *_p(_O, "basta de|basta ya de", rf" {_ES_MSGS}\b", _ES_MSG_WORDS),
        *_p(
            _O,
            "no",
            r" (?:me |nos )?(?:env[ií]\w*|mand\w*|escrib\w*|contact\w*)"
            rf"(?: m[aá]s| nada)?(?: {_ES_MSGS}| m[aá]s| nada)\b",
            ("más", "nada", *_ES_MSG_WORDS),
        ),
        *_p(
            _O,
            "no quiero|no deseo",
            rf" (?:recibir |seguir recibiendo )?(?:m[aá]s )?(?:sus |estos |tus |)"
            rf"(?:{_ES_MSGS}|recibir)\b",
            ("recibir", *_ES_MSG_WORDS),
        ),
        *_p(_O, "ya no quiero|ya no deseo", r" (?:recibir|seguir)\b", ("recibir", "seguir")),
        *_p(_O, "no más|no mas", rf" {_ES_MSGS}\b", _ES_MSG_WORDS),
        Phrase(
            _O,
            r"\b(?:fuera|sal\w*|s[aá](?:c|qu)\w*|b[oó]rr\w*|elim[ií]n\w*|qu[ií]t\w*|ret[ií]r\w*) (?:de|del) "
            r"(?:(?:la|su|sus|tu|tus|esta|estos|vuestra|vuestras) )?"
            rf"(?:lista|listas|base de datos|grupo de difusi[oó]n|{_ES_MSGS})\b",
            ("lista", "listas", "datos", "difusión", *_ES_MSG_WORDS),
        ),
        Phrase(_O, r"\b(?:b[oó]rr|elim[ií]n|qu[ií]t|sa[cq]u?)\w* (?:mi|el|mi|este) n[uú]mero\b", ("número",)),
        *_p(
            _O,
            "dejen de|deja de|deje de|paren de|para de|pare de",
            r" (?:enviar|mandar|escribir|molestar|contactar|llamar)\w*\b",
            (
                "enviar",
                "enviarme",
                "enviarnos",
                "mandar",
                "mandarme",
                "escribir",
                "escribirme",
                "molestar",
                "molestarme",
                "contactar",
                "contactarme",
                "llamar",
                "llamarme",
            ),
        ),
        Phrase(
            _O,
            r"\bdesuscrib\w*|\bdesinscrib\w*",
            (
                "desuscribir",
                "desuscribirme",
                "desuscribanme",
                "desuscríbanme",
                "desinscribir",
                "desinscribirme",
            ),
        ),
        Phrase(
            _I,
            r"\b(?:d[aáée]\w*|doy) de alta\b(?! (?:mi|mis|la|el|un|una|los|las|tu|su|sus|este|esta)\b)",
            ("alta",),
        ),
        *_p(
            _I,
            "volver a|quiero",
            rf" (?:recibir(?: los| sus| tus| estos)? {_ES_MSGS}|suscribirme)\b",
            ("suscribirme", *_ES_MSG_WORDS),
        ),
        *_p(
            _H,
            "ayuda",
            rf" (?:con|sobre|para) (?:este|esta|el|la|los|estos|su|sus|mi|mis) (?:\w+ )?"
            rf"(?:servicio|suscripci[oó]n|{_ES_MSGS})\b",
            ("ayuda",),
        ),
    ),
    courtesy=_words(
        "por favor porfa porfavor xfa pf gracias muchas ya ahora todo todos me ok vale inmediatamente"
    ),
    ordinary=_words(
        "el la los las un una en con que qué cuando cuándo donde dónde como cómo es está esta mi mis tu su "
        "pedido cita reserva mañana hoy hora precio del al y o pero no"
    ),
    conjunctions=_words("y e"),
    negations=r"\b(?:no|nunca|jam[aá]s|ni)\b",
    replies={
        _O: "Te has dado de baja y no recibirás más mensajes de {sender}. Responde ALTA para volver a "
        "suscribirte.",
        _I: "Te has suscrito de nuevo a los mensajes de {sender}. Responde BAJA para darte de baja o AYUDA "
        "para obtener ayuda.",
        _H: "Responde BAJA para darte de baja o ALTA para volver a suscribirte. Pueden aplicarse tarifas de "
        "mensajes y datos.",
    },
)

FRENCH = LanguagePack(
    language=Language.FR,
    keywords=(
        KeywordGroup(
            "stop",
            _O,
            _LEADING,
            ("ARRÊT", "ARRET", "STOP", "DÉSABONNER", "DÉSINSCRIRE", "DÉSABONNEMENT", "DÉSINSCRIPTION"),
        ),
        KeywordGroup("stop", _O, _LEADING, ("FIN", "ARRÊTER", "ARRÊTEZ", "ANNULER"), brands=False),
        KeywordGroup("start", _I, _LEADING, ("ABONNER", "RÉABONNER")),
        KeywordGroup("start", _I, _LEADING, ("DÉBUT", "REPRENDRE"), brands=False),
        KeywordGroup("help", _H, _LEADING, ("AIDE",)),
    ),
    phrases=(
        Phrase(
            _O,
            r"\bd[ée]s(?:abonn|inscri|inscriv)\w*",
            (
                "désabonner",
                "désabonnez",
                "désabonne",
                "désabonnement",
                "désinscrire",
                "désinscrivez",
                "désinscris",
                "désinscrit",
                "désinscription",
                "désabonné",
                "désabonnée",
            ),
        ),
        *_p(_O, "ne", r" (?:m'|me |nous |)(?:envoy|[ée]cri|contact|appel|text)\w* plus\b", ("plus",)),
        *_p(
            _O,
            "ne veux plus|veux plus|veux pu|ne souhaite plus|souhaite plus|souhaite pu|ne désire plus|"
            "désire plus",
            r" (?:recevoir|être contacté\w*|être sollicité\w*|"
            r"de (?:messages|sms|textos|pubs?|publicit[ée]s?))\b",
            ("plus", "pu"),
        ),
        Phrase(
            _O,
            r"^(?:plus de|pas de|fini les) (?:messages|sms|textos|pubs?|publicit[ée]s?|promos?)"
            r"(?: svp| stp| merci| s'il vous pla[iî]t)?$",
            ("plus", "pas", "fini"),
        ),
        *_p(
            _O,
            "retirez|supprimez|enlevez|effacez|retire|supprime|enlève|efface|rayez|retirer|supprimer|"
            "enlever|effacer|rayer",
            r"(?:[ -]moi| mon num[ée]ro| mes coordonn[ée]es)\b",
        ),
        *_p(
            _O,
            "lâchez-moi|lâche-moi|laissez-moi tranquille|fichez-moi la paix",
            r"\b",
            ("lâchez", "lâche", "tranquille", "paix"),
        ),
        *_p(
            _O,
            "arrêtez|arrête|arrêter|cessez|cesser|cesse",
            r" (?:de m'envoyer|d'envoyer|de m'[ée]crire|de me (?:contacter|texter|spammer|harceler)|"
            r"les (?:messages|sms|textos|envois)|vos (?:messages|sms|textos))\b",
        ),
        *_p(_O, "stop aux|stop à vos", r" (?:messages|sms|textos|pubs?)\b", ("aux", "vos")),
        Phrase(
            _I,
            r"\br[ée]abonn\w*|\bm'abonner\b|\bme r[ée]inscrire\b",
            ("réabonner", "réabonnez", "abonner", "réinscrire"),
        ),
        *_p(
            _I,
            "de nouveau|à nouveau|encore",
            r" recevoir (?:vos |les |des |ces )?(?:messages|sms|textos)\b",
            ("recevoir",),
        ),
        *_p(
            _I,
            "recevoir",
            r" (?:vos |les |des |ces )?(?:messages|sms|textos) (?:de nouveau|à nouveau)\b",
            ("recevoir",),
        ),
        *_p(
            _H,
            "aide",
            r" (?:avec|pour|sur|concernant) (?:ce|cet|cette|ces|le|la|les|votre|vos|mon|ma) (?:\w+ )?"
            r"(?:service|abonnement|messages|sms|textos)\b",
            ("aide",),
        ),
    ),
    courtesy=_words("svp stp s'il s il vous plaît plait merci maintenant tout tous moi ok immédiatement"),
    ordinary=_words(
        "le la les l un une du des à au aux en dans sur pour avec et ou mais est mon ma mes ton ta votre ce "
        "cette quand où comment pourquoi qui que commande rendez bus maladie travail tram métro metro ne "
        "pas"
    ),
    conjunctions=_words("et"),
    negations=r"\b(?:ne|n'|pas|jamais|non)\b|\bn'",
    replies={
        _O: "Vous êtes désabonné et ne recevrez plus de messages de {sender}. Répondez ABONNER pour vous "
        "réabonner.",
        _I: "Vous êtes de nouveau abonné aux messages de {sender}. Répondez ARRET pour vous désabonner, "
        "AIDE pour de l'aide.",
        _H: "Répondez ARRET pour vous désabonner ou ABONNER pour vous réabonner. Des frais de messagerie et "
        "de données peuvent s'appliquer.",
    },
)

_DE_MSGS = r"(?:sms|nachrichten|werbung|mitteilungen|textnachrichten|newsletter|angebote|werbenachrichten)"

GERMAN = LanguagePack(
    language=Language.DE,
    keywords=(
        KeywordGroup(
            "stop", _O, _LEADING, ("STOPP", "STOP", "ABMELDEN", "ABBESTELLEN", "AUSTRAGEN", "ABMELDUNG")
        ),
        KeywordGroup("stop", _O, _LEADING, ("ENDE", "KÜNDIGEN", "BEENDEN"), brands=False),
        KeywordGroup("start", _I, _LEADING, ("START", "ANMELDEN")),
        KeywordGroup("start", _I, _LEADING, ("STARTEN",), brands=False),
        KeywordGroup("help", _H, _LEADING, ("HILFE",)),
    ),
    phrases=(
        *_p(_O, "keine", rf" (?:weiteren )?{_DE_MSGS} mehr\b", ("mehr",)),
        *_p(_O, "will|möchte|wünsche", rf" (?:ich )?keine (?:weiteren )?{_DE_MSGS}\b", ("keine",)),
        *_p(
            _O,
            "melden|tragen|meld|trag|meldet|tragt|melde|trage",
            r" (?:sie |ihr |)mich (?:bitte )?(?:sofort )?(?:ab|aus)\b",
            ("mich",),
        ),
        *_p(_O, "abmelden|austragen|abbestellen|abzumelden|auszutragen|abzubestellen", r"\b"),
        *_p(
            _O,
            "entfernen sie|löschen sie|loeschen sie|streichen sie",
            r" (?:mich|meine nummer|meine daten)\b",
        ),
        Phrase(
            _O,
            r"\bh(?:ö|oe)r\w* (?:sie |ihr )?(?:bitte )?auf,? (?:mir |mich )?(?:zu )?"
            rf"(?:schreiben|kontaktieren|anzuschreiben|nerven|{_DE_MSGS})",
            ("auf",),
        ),
        *_p(
            _O,
            "nicht mehr",
            r" (?:kontaktieren|anschreiben|schreiben|anrufen|zuschicken|senden)\b",
            ("kontaktieren", "anschreiben", "schreiben", "anrufen", "zuschicken", "senden"),
        ),
        Phrase(
            _O,
            r"\b(?:schreib|schick|send|kontaktier)\w* (?:sie |ihr )?(?:mir|mich|uns) (?:bitte )?nicht mehr\b",
            ("mehr",),
        ),
        *_p(
            _O,
            "aus dem verteiler|aus der liste|aus ihrem verteiler|aus eurem verteiler|aus dem newsletter",
            r"\b",
            ("verteiler", "liste", "newsletter"),
        ),
        *_p(
            _O,
            "widerrufe|widerrufen",
            r" (?:hiermit )?(?:meine |die )?(?:einwilligung|zustimmung|einverständnis)\b",
            ("einwilligung", "zustimmung", "einverständnis"),
        ),
        *_p(_O, "lasst mich in ruhe|lassen sie mich in ruhe|lass mich in ruhe", r"\b", ("ruhe",)),
        *_p(
            _I,
            "wieder|erneut",
            r" (?:anmelden|abonnieren|aktivieren)\b",
            ("anmelden", "abonnieren", "aktivieren"),
        ),
        Phrase(_I, r"\bmeld\w* (?:sie |ihr )?mich (?:bitte )?(?:wieder|erneut) an\b", ("wieder", "erneut")),
        *_p(
            _I,
            "wieder",
            rf" (?:eure |ihre |die |deine )?{_DE_MSGS} (?:bekommen|erhalten|empfangen)\b",
            ("bekommen", "erhalten", "empfangen"),
        ),
        *_p(
            _H,
            "hilfe",
            r" (?:zu|mit|bei|für) (?:diesem|dieser|diesen|dem|der|den|ihrem|eurem|meinem) (?:\w+ )?"
            rf"(?:dienst|service|abo|{_DE_MSGS}|sms-dienst)\b",
            ("hilfe",),
        ),
    ),
    courtesy=_words("bitte danke sofort jetzt alles alle mich ok dankeschön vielen dank endlich"),
    ordinary=_words(
        "der die das den dem des ein eine einen zu zum zur an am im in auf mit für von und oder aber ist "
        "sind mein meine wann wo wie was warum bestellung termin nicht kein keine nie bus"
    ),
    conjunctions=_words("und"),
    negations=r"\b(?:nicht|kein|keine|keinen|nie|niemals)\b",
    replies={
        _O: "Sie sind abgemeldet und erhalten keine Nachrichten mehr von {sender}. Antworten Sie START, um "
        "sich wieder anzumelden.",
        _I: "Sie sind wieder angemeldet für Nachrichten von {sender}. Antworten Sie STOPP zum Abmelden, "
        "HILFE für Hilfe.",
        _H: "Antworten Sie STOPP zum Abmelden oder START zum erneuten Anmelden. Es können Gebühren für "
        "Nachrichten und Daten anfallen.",
    },
)

_PT_MSG_WORDS = (
    "mensagens",
    "sms",
    "promoções",
    "promocoes",
    "propaganda",
    "propagandas",
    "ofertas",
    "notificações",
)
_PT_MSGS = _any_of(_PT_MSG_WORDS)

PORTUGUESE = LanguagePack(
    language=Language.PT,
    keywords=(
        KeywordGroup(
            "stop", _O, _LEADING, ("PARAR", "SAIR", "CANCELAR", "DESCADASTRAR", "DESCADASTRE", "REMOVER")
        ),
        KeywordGroup("stop", _O, _LEADING, ("PARE", "FIM", "CHEGA"), brands=False),
        KeywordGroup("start", _I, _LEADING, ("REATIVAR",)),
        KeywordGroup("start", _I, _LEADING, ("VOLTAR", "INICIAR"), brands=False),
        KeywordGroup("help", _H, _LEADING, ("AJUDA",)),
    ),
    phrases=(
        *_p(_O, "não|nao", rf" (?:me )?(?:envi|mand)\w* (?:mais|{_PT_MSGS})\b", ("mais", *_PT_MSG_WORDS)),
        *_p(
            _O,
            "não quero|nao quero|não desejo|nao desejo",
            rf" (?:mais )?(?:receber|{_PT_MSGS})\b",
            ("receber", *_PT_MSG_WORDS),
        ),
        Phrase(
            _O,
            r"\b(?:descadastr|desinscrev|remov|tir|exclu|apag|sair)\w*(?:-me| me)? "
            r"(?:da|dessa|desta|de sua|da sua|de vossa) lista\b",
            ("lista",),
        ),
        Phrase(
            _O,
            r"\bdescadastr\w*",
            (
                "descadastrar",
                "descadastre",
                "descadastra",
                "descadastrem",
                "descadastro",
                "descadastrado",
                "descadastrada",
            ),
        ),
        *_p(
            _O,
            "parem de|pare de|para de|deixem de|deixe de",
            r" (?:me )?(?:enviar|mandar|ligar|incomodar|mandarem|enviarem)\b",
            ("enviar", "mandar", "ligar", "incomodar", "mandarem", "enviarem"),
        ),
        *_p(_O, "chega de", rf" {_PT_MSGS}\b", _PT_MSG_WORDS),
        Phrase(
            _O, r"\b(?:remov|exclu|apag|tir|delet)\w* (?:o )?(?:meu|o meu|esse|este) n[uú]mero\b", ("número",)
        ),
        *_p(
            _O,
            "cancelar",
            r" (?:o recebimento|a assinatura|as mensagens|os sms|o envio)\b",
            ("recebimento", "assinatura", "mensagens", "sms", "envio"),
        ),
        *_p(_I, "quero voltar a|voltar a|quero", rf" receber(?: as| os)? {_PT_MSGS}\b", ("receber",)),
        Phrase(_I, r"\b(?:recadastr|reinscrev)\w*", ("recadastrar", "recadastre", "reinscrever")),
        Phrase(_I, r"\b(?:me )?(?:inscrev|cadastr|assin)\w* (?:de novo|novamente)\b", ("novo", "novamente")),
        *_p(
            _H,
            "ajuda",
            r" (?:com|sobre|para) (?:esse|este|essa|esta|o|a|os|as|seu|sua|meu|minha) (?:\w+ )?"
            rf"(?:serviço|assinatura|{_PT_MSGS})\b",
            ("ajuda",),
        ),
    ),
    courtesy=_words("por favor obrigado obrigada brigado já agora tudo todos me ok pf pfv vlw imediatamente"),
    ordinary=_words(
        "o a os as um uma em no na com para que quando onde como é meu minha pedido consulta reserva "
        "amanhã hoje do da e ou mas não"
    ),
    conjunctions=_words("e"),
    negations=r"\b(?:não|nao|nunca|jamais)\b",
    replies={
        _O: "Você foi descadastrado e não receberá mais mensagens de {sender}. Responda VOLTAR para se "
        "cadastrar de novo.",
        _I: "Você foi cadastrado novamente nas mensagens de {sender}. Responda PARAR para sair ou AJUDA para "
        "ajuda.",
        _H: "Responda PARAR para sair ou VOLTAR para se cadastrar de novo. Podem ser cobradas tarifas de "
        "mensagens e dados.",
    },
)

_IT_MSG_WORDS = ("messaggi", "sms", "pubblicità", "pubblicita", "promozioni", "offerte", "notifiche", "spam")
_IT_MSGS = _any_of(_IT_MSG_WORDS)

ITALIAN = LanguagePack(
    language=Language.IT,
    keywords=(
        KeywordGroup(
            "stop",
            _O,
            _LEADING,
            ("STOP", "DISISCRIVI", "DISISCRIVIMI", "CANCELLAMI", "CANCELLA", "DISDETTA"),
        ),
        KeywordGroup("stop", _O, _LEADING, ("BASTA", "FINE", "ANNULLA"), brands=False),
        KeywordGroup("start", _I, _LEADING, ("ISCRIVIMI", "ISCRIVI", "RIATTIVA")),
        KeywordGroup("start", _I, _LEADING, ("AVVIA", "INIZIA"), brands=False),
        KeywordGroup("help", _H, _LEADING, ("AIUTO",)),
    ),
    phrases=(
        *_p(_O, "non", r" (?:mi |ci )?(?:invia|mand|scriv|contatt)\w* (?:più|piu)\b", ("più",)),
        *_p(
            _O,
            "non voglio|non desidero|non",
            rf" (?:più |piu )?(?:ricevere|{_IT_MSGS})(?: più| piu)?\b",
            ("ricevere", *_IT_MSG_WORDS),
        ),
        Phrase(_O, r"\b(?:rimuov|elimin|cancell|togli|lev)\w* (?:il )?(?:mio|questo) numero\b", ("numero",)),
        *_p(
            _O,
            "dalla lista|dalle liste|dalla vostra lista|dalla tua lista|dalla mailing list",
            r"\b",
            ("lista", "liste"),
        ),
        *_p(
            _O,
            "cancellatemi|cancellami|toglietemi|toglimi|rimuovetemi|rimuovimi|disiscrivetemi|disiscrivimi|"
            "eliminatemi|eliminami|disiscrivermi|disiscrivere|cancellarmi|togliermi|rimuovermi|levatemi|levami",
            r"\b",
        ),
        *_p(
            _O,
            "smettete|smettila|smetti|smettetela|smettere",
            r" di (?:inviar|mandar|scriver|contattar)\w*\b",
        ),
        *_p(
            _O,
            "basta|niente più",
            rf"(?: con| con i| con le| con questi| con queste)? {_IT_MSGS}\b",
            _IT_MSG_WORDS,
        ),
        *_p(_I, "voglio|vorrei", r" (?:ri)?iscrivermi\b", ("iscrivermi", "riiscrivermi")),
        *_p(_I, "reiscrivimi", r"\b"),
        Phrase(
            _I,
            r"\b(?:ri)?iscriv\w*(?:mi|temi) (?:di nuovo|ancora|nuovamente)\b",
            ("nuovo", "ancora", "nuovamente"),
        ),
        Phrase(
            _I,
            r"\bricevere (?:di nuovo|ancora|nuovamente) (?:i |le |i vostri |le vostre |questi )?"
            + _IT_MSGS
            + r"\b",
            ("nuovo", "ancora", "nuovamente"),
        ),
        *_p(
            _H,
            "aiuto",
            r" (?:con|per|su|riguardo) (?:questo|questa|il|la|i|le|vostro|vostra|mio|mia) (?:\w+ )?"
            rf"(?:servizio|abbonamento|{_IT_MSGS})\b",
            ("aiuto",),
        ),
    ),
    courtesy=_words("per favore perfavore grazie mille subito ora adesso tutto tutti ok pf x"),
    ordinary=_words(
        "lo la i gli le un una in con su che quando dove come è mio mia ordine appuntamento "
        "prenotazione domani oggi l e o ma non"
    ),
    conjunctions=_words("e ed"),
    negations=r"\b(?:non|mai|nemmeno|neanche)\b",
    replies={
        _O: "Iscrizione annullata: non riceverai più messaggi da {sender}. Rispondi ISCRIVIMI per iscriverti "
        "di nuovo.",
        _I: "Sei di nuovo iscritto ai messaggi di {sender}. Rispondi STOP per annullare l'iscrizione, AIUTO "
        "per assistenza.",
        _H: "Rispondi STOP per annullare l'iscrizione o ISCRIVIMI per iscriverti di nuovo. Potrebbero essere "
        "applicati costi.",
    },
)

_NL_MSGS = r"(?:sms(?:'jes|jes|'en)?|berichten|berichtjes|reclame|spam|aanbiedingen|nieuwsbrieven)"

DUTCH = LanguagePack(
    language=Language.NL,
    keywords=(
        KeywordGroup("stop", _O, _LEADING, ("STOP", "STOPPEN", "AFMELDEN", "UITSCHRIJVEN", "UITSCHRIJVING")),
        KeywordGroup("stop", _O, _LEADING, ("EINDE",), brands=False),
        KeywordGroup("start", _I, _LEADING, ("START", "AANMELDEN")),
        KeywordGroup("help", _H, _LEADING, ("HULP", "HELP")),
    ),
    phrases=(
        *_p(_O, "geen", rf" {_NL_MSGS} meer\b", ("meer",)),
        *_p(
            _O,
            "meld me|meld mij|meld ons|schrijf me|schrijf mij|schrijf ons",
            r" (?:maar |alsjeblieft |aub |)(?:af|uit)\b",
            ("meld", "schrijf"),
        ),
        *_p(_O, "afmelden|uitschrijven|af te melden|uit te schrijven", r"\b"),
        *_p(
            _O,
            "stop met|stoppen met|hou op met|houd op met|stop eens met",
            r" (?:sms'en|smsen|sms|berichten|sturen|appen|mailen|bellen|spammen|me te)\b",
            ("met",),
        ),
        *_p(_O, "haal me|haal mij|haal mijn nummer|haal ons", r" (?:uit|van)\b"),
        *_p(_O, "verwijder", r" (?:me|mij|mijn nummer|mijn gegevens|ons)\b"),
        *_p(_O, "laat me|laat mij", r" (?:alsjeblieft |aub |)met rust\b", ("rust",)),
        *_p(
            _O,
            "niet meer",
            r" (?:sturen|sms'en|smsen|appen|mailen|bellen|contacteren|benaderen|benaderd|"
            r"gecontacteerd|gebeld|ge-sms't|berichten)\b",
            ("meer",),
        ),
        *_p(
            _O,
            "mijn nummer|mijn gegevens",
            r" (?:verwijderen|wissen|schrappen)\b",
            ("verwijderen", "wissen", "schrappen"),
        ),
        *_p(_I, "weer aanmelden|opnieuw aanmelden", r"\b"),
        *_p(_I, "meld me|meld mij", r" (?:weer |opnieuw )?aan\b"),
        Phrase(_I, rf"\b(?:{_NL_MSGS} )?(?:weer|opnieuw) ontvangen\b", ("ontvangen",)),
        *_p(
            _H,
            "hulp",
            r" (?:nodig )?(?:met|bij|voor|over) (?:deze|dit|de|het|jullie|uw|mijn) (?:\w+ )?"
            rf"(?:dienst|service|abonnement|sms-dienst|{_NL_MSGS})\b",
            ("hulp",),
        ),
    ),
    courtesy=_words("aub alsjeblieft alstublieft graag dank u wel bedankt nu alles ok mij me svp"),
    ordinary=_words(
        "het een op in aan met voor en of maar is zijn mijn wanneer waar hoe wat bestelling afspraak "
        "morgen vandaag niet geen bus"
    ),
    conjunctions=_words("en"),
    negations=r"\b(?:niet|geen|nooit)\b",
    replies={
        _O: "Je bent afgemeld en ontvangt geen berichten meer van {sender}. Antwoord START om je weer aan te "
        "melden.",
        _I: "Je bent weer aangemeld voor berichten van {sender}. Antwoord STOP om je af te melden, HULP voor "
        "hulp.",
        _H: "Antwoord STOP om je af te melden of START om je weer aan te melden. Er kunnen kosten voor "
        "berichten en data gelden.",
    },
)

PACKS: Mapping[Language, LanguagePack] = MappingProxyType(
    {pack.language: pack for pack in (ENGLISH, SPANISH, FRENCH, GERMAN, PORTUGUESE, ITALIAN, DUTCH)}
)

#: Every pack, English first. A subscriber's language is unknown and a missed opt-out is a legal
#: risk, so all packs apply unless an account narrows them; the order decides the language (and so
#: the reply) of a keyword that several packs share: STOP and INFO are English unless an account
#: puts another language first.
DEFAULT_LANGUAGES: tuple[Language, ...] = tuple(PACKS)
