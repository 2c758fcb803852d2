"""Render engine form fields (digits_engine.fields.Field) as Streamlit widgets.

Numbers are typed in text boxes so that the engine's validation, not the
widget, says what is wrong, next to the field."""
import streamlit as st

from digits_engine import config

from digits_engine.fields import Field, FormErrors


def _label(field: Field, value) -> str:
    return field.choice_labels.get(value, str(value))


def widget(field: Field, key: str, error: str | None = None, choices=None, labels: dict | None = None):
    """One field's widget, its value kept in st.session_state[key]; the error, if any, under it."""
    label = field.label + (" *" if field.required else "")
    if field.kind == "choice" or choices is not None:
        options = list(choices if choices is not None else field.choices)
        names = labels or {}
        st.selectbox(label, options, key=key, help=field.help or None,
                     format_func=lambda v: names.get(v, _label(field, v)))
    elif field.kind == "bool":
        st.checkbox(label, key=key, help=field.help or None)
    elif field.kind == "secret":
        st.text_input(label, key=key, help=field.help or None, type="password", autocomplete="off")
    else:
        st.text_input(label, key=key, help=field.help or None,
                      placeholder="blank: default" if field.default is None and not field.required else None)
    if error:
        st.error(error, icon=":material/error:")


def init_state(fields: list[Field], prefix: str, overrides: dict | None = None) -> None:
    """Put each field's starting value in session_state once (text boxes hold strings)."""
    overrides = overrides or {}
    set_values(fields, prefix, {f.name: overrides.get(f.name, f.default) for f in fields
                                if prefix + f.name not in st.session_state})


def set_values(fields: list[Field], prefix: str, values: dict) -> None:
    """Put `values` (field name -> typed value) in the fields' widgets, as they hold them."""
    for field in fields:
        if field.name in values:
            value = values[field.name]
            keep_type = field.kind in ("choice", "bool")
            st.session_state[prefix + field.name] = value if keep_type else "" if value is None else str(value)


def values(fields: list[Field], prefix: str) -> dict:
    return {f.name: st.session_state.get(prefix + f.name) for f in fields}


def errors(prefix: str) -> dict:
    """{field: message} from the last submit of the form whose keys start with `prefix`."""
    return st.session_state.get(prefix + "errors", {})


def submit(create, fields: list[Field], prefix: str, extra: dict | None = None) -> None:
    """Form callback: create the job from the widget values (plus `extra`), or keep each field's
    error for the next run. Secrets are wiped from the form once the job has them."""
    try:
        job = create({**values(fields, prefix), **(extra or {})})
    except FormErrors as exc:
        st.session_state[prefix + "errors"] = exc.errors
        return
    for field in fields:
        if field.kind == "secret":
            st.session_state[prefix + field.name] = ""
    st.session_state[prefix + "errors"] = {}
    st.session_state[prefix + "created"] = job.id


def open_created_job(prefix: str, page: str) -> None:
    """After a successful submit, go to the new job's page."""
    if job_id := st.session_state.pop(prefix + "created", None):
        st.switch_page(page, query_params={"job": job_id})


def in_columns(fields: list[Field], prefix: str, field_errors: dict, per_row: int = 3) -> None:
    columns = st.columns(per_row)
    for i, field in enumerate(fields):
        with columns[i % per_row]:
            widget(field, prefix + field.name, field_errors.get(field.name))


def folded(title: str, fields: list[Field], prefix: str, field_errors: dict) -> None:
    """The advanced fields in columns, in an expander that opens when one of them is wrong."""
    with st.expander(title, expanded=any(f.name in field_errors for f in fields)):
        in_columns(fields, prefix, field_errors)


def upload_limit_mb() -> int:
    """What an uploader accepts: DIGITS_UPLOAD_MAX_MB, unless Streamlit's own server.maxUploadSize is lower."""
    return min(config.upload_max_mb(), int(st.get_option("server.maxUploadSize")))
