"""The French language pack (``fr``): see :mod:`worker.classify.packs.base` for what a pack holds."""

from __future__ import annotations

from worker.classify.packs.base import KeywordGroup, LanguagePack, Phrase, heads, pairs, words
from worker.model import Category, Intent, Language, MatchMode

_O, _I, _H = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP
_LEADING = MatchMode.LEADING

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
        KeywordGroup(
            "stop_marketing",
            _O,
            _LEADING,
            pairs("STOP ARRÊT", "PUB PUBS PUBLICITÉ PUBLICITÉS"),
            category=Category.MARKETING,
        ),
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
        *heads(_O, "ne", r" (?:m'|me |nous |)(?:envoy|[ée]cri|contact|appel|text)\w* plus\b", ("plus",)),
        *heads(
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
        *heads(
            _O,
            "retirez|supprimez|enlevez|effacez|retire|supprime|enlève|efface|rayez|retirer|supprimer|"
            "enlever|effacer|rayer",
            r"(?:[ -]moi| mon num[ée]ro| mes coordonn[ée]es)\b",
        ),
        *heads(
            _O,
            "lâchez-moi|lâche-moi|laissez-moi tranquille|fichez-moi la paix",
            r"\b",
            ("lâchez", "lâche", "tranquille", "paix"),
        ),
        *heads(
            _O,
            "arrêtez|arrête|arrêter|cessez|cesser|cesse",
            r" (?:de m'envoyer|d'envoyer|de m'[ée]crire|de me (?:contacter|texter|spammer|harceler)|"
            r"les (?:messages|sms|textos|envois)|vos (?:messages|sms|textos))\b",
        ),
        *heads(_O, "stop aux|stop à vos", r" (?:messages|sms|textos|pubs?)\b", ("aux", "vos")),
        Phrase(
            _I,
            r"\br[ée]abonn\w*|\bm'abonner\b|\bme r[ée]inscrire\b",
            ("réabonner", "réabonnez", "abonner", "réinscrire"),
        ),
        *heads(
            _I,
            "de nouveau|à nouveau|encore",
            r" recevoir (?:vos |les |des |ces )?(?:messages|sms|textos)\b",
            ("recevoir",),
        ),
        *heads(
            _I,
            "recevoir",
            r" (?:vos |les |des |ces )?(?:messages|sms|textos) (?:de nouveau|à nouveau)\b",
            ("recevoir",),
        ),
        *heads(
            _H,
            "aide",
            r" (?:avec|pour|sur|concernant) (?:ce|cet|cette|ces|le|la|les|votre|vos|mon|ma) (?:\w+ )?"
            r"(?:service|abonnement|messages|sms|textos)\b",
            ("aide",),
        ),
    ),
    courtesy=words("svp stp s'il s il vous plaît plait merci maintenant tout tous moi ok immédiatement"),
    ordinary=words(
        "le la les l un une du des à au aux en dans sur pour avec et ou mais est mon ma mes ton ta votre ce "
        "cette quand où comment pourquoi qui que commande rendez bus maladie travail tram métro metro ne "
        "pas"
    ),
    conjunctions=words("et"),
    negations=r"\b(?:ne|n'|pas|jamais|non)\b|\bn'",
    wrong_number=(
        Phrase(_O, r"\b(?:mauvais|faux) num[ée]ro\b", ("numéro",)),
        Phrase(
            _O,
            r"\b(?:erreur|tromp\w*) de (?:num[ée]ro|personne|destinataire)\b",
            ("numéro", "personne", "destinataire"),
        ),
    ),
    replies={
        _O: "Vous êtes désabonné et ne recevrez plus de messages de {sender}. Répondez ABONNER pour vous "
        "réabonner.",
        _I: "Vous êtes de nouveau abonné aux messages de {sender}. Répondez ARRET pour vous désabonner, "
        "AIDE pour de l'aide.",
        _H: "Répondez ARRET pour vous désabonner ou ABONNER pour vous réabonner. Des frais de messagerie et "
        "de données peuvent s'appliquer.",
    },
)
