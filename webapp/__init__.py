"""The web app: Gradio chat and staff pages (``ui``), FastAPI routes (``server``), users (``auth``)."""
