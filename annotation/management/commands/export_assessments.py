"""Export assessments as CSV or JSON Lines from the command line: for cron jobs, large
exports on the server itself, and pipelines that read stdout."""

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from annotation.export import FORMATS, SHAPES, Export, ExportOptions, scope_for
from annotation.models import Queue
from traces.models import Experiment


class Command(BaseCommand):
    help = (
        "Export assessments (labeled data) as CSV or JSON Lines, to a file or stdout. Run it "
        "whenever a data set is needed; --filter takes the trace list's query string, so the "
        "export holds exactly the traces the list shows for it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=list(FORMATS), default="csv")
        parser.add_argument(
            "--shape",
            choices=SHAPES,
            default="long",
            help="long: a row per assessment; wide: a row per trace; revisions: a row per change",
        )
        parser.add_argument(
            "--filter",
            default="",
            metavar="QUERY",
            help='The trace list\'s query string, e.g. "state=ERROR&feedback=correct=false"',
        )
        parser.add_argument("--experiment", metavar="ID_OR_NAME", help="Only this experiment")
        parser.add_argument("--queue", metavar="ID_OR_NAME", help="The traces of this queue")
        parser.add_argument(
            "--user", metavar="USERNAME", help='Whose "reviewed by me" filter to apply'
        )
        parser.add_argument(
            "--output", "-o", default="-", help="File to write (replaced whole), or - for stdout"
        )
        parser.add_argument("--include-inputs", action="store_true", help="Root span I/O")
        parser.add_argument("--include-invalid", action="store_true", help="Overridden entries")
        parser.add_argument("--include-deleted", action="store_true", help="Deleted entries")
        parser.add_argument("--per-annotator", action="store_true", help="Wide: per annotator")
        parser.add_argument("--bom", action="store_true", help="CSV: start with a UTF-8 BOM")
        parser.add_argument("--raw", action="store_true", help="CSV: no formula neutralising")

    def handle(self, *args, **opts):
        params = QueryDict(opts["filter"], mutable=True)
        if opts["experiment"]:
            params["experiment"] = str(_by_id_or_name(Experiment, opts["experiment"]).pk)
        user = _user(opts["user"]) if opts["user"] else AnonymousUser()
        if params.get("reviewed") and not user.is_authenticated:
            raise CommandError('The "reviewed" filter needs --user.')
        queue = _by_id_or_name(Queue, opts["queue"]) if opts["queue"] else None
        try:
            scope = scope_for(params, user=user, queue=queue)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        options = ExportOptions(
            entries=scope.entries,
            format=opts["format"],
            shape=opts["shape"],
            include_inputs=opts["include_inputs"],
            include_invalid=opts["include_invalid"],
            include_deleted=opts["include_deleted"],
            per_annotator=opts["per_annotator"],
            bom=opts["bom"],
            raw=opts["raw"],
        )
        export = Export(scope.traces, options)
        if opts["output"] == "-":
            for chunk in export:
                self.stdout.write(chunk, ending="")
            self.stdout.flush()
            self.stderr.write(f"Exported {export.rows} rows.")
            return
        # Written beside the target and renamed at the end: a failed run leaves no half file.
        partial = f"{opts['output']}.part"
        with open(partial, "w", encoding="utf-8", newline="") as out:
            for chunk in export:
                out.write(chunk)
        os.replace(partial, opts["output"])
        self.stdout.write(f"Exported {export.rows} rows to {opts['output']}.")


def _by_id_or_name(model, ref: str):
    match = model.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
    match = match or model.objects.filter(name=ref).first()
    if match is None:
        raise CommandError(f"No {model._meta.verbose_name} with id or name {ref!r}.")
    return match


def _user(username: str):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"No user {username!r}.") from None
