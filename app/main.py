"""The app's entry: `streamlit run app/main.py`. A router and a frame: page
config, the sign-in gate, one scheduling pass per page load, and the navigation."""
import streamlit as st

try:
    from digits_engine import ownership
    from digits_engine.scheduler import Scheduler
except ImportError:  # started without `pip install -e .`
    st.error("The engine package `digits_engine` is not installed. Start the app with `make run`.")
    st.stop()

import auth

st.set_page_config(page_title="DIGITS", page_icon=":material/neurology:", layout="wide")

ownership.set_owner_source(auth.signed_in_name)

pages = {
    "": [st.Page("../pages/home.py", title="Home", icon=":material/home:", default=True)],
    "Datasets": [
        st.Page("../pages/new_dataset.py", title="New dataset", icon=":material/add_photo_alternate:"),
        st.Page("../pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
    ],
    "Models": [
        st.Page("../pages/new_model.py", title="New model", icon=":material/model_training:"),
        st.Page("../pages/model.py", title="Model", icon=":material/insights:"),
        st.Page("../pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("../pages/inference.py", title="Inference", icon=":material/fact_check:"),
        st.Page("../pages/import_model.py", title="Import model", icon=":material/upload:"),
    ],
    "Admin": [st.Page("../pages/system.py", title="System", icon=":material/settings:")],
}
signed_in = auth.is_open()
# The page the URL names is chosen even before sign-in, so that a shared link opens after a password
# sign-in (single sign-on comes back to Home: Streamlit's callback redirects there).
page = st.navigation(pages, position="sidebar" if signed_in else "hidden")
if not signed_in:
    auth.sign_in_form()
    st.stop()
auth.signed_in_bar()
Scheduler().schedule()  # start waiting jobs and record dead workers before anything is shown
page.run()
