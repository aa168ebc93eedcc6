"""The Streamlit front end. It never imports TensorFlow/Keras directly: it asks `model/` for numpy arrays.

app.py         the page (`main()`): the sidebar, then the panels in order
session.py     every session-state key, behind typed accessors
cache.py       st.cache_resource / st.cache_data wrappers around `model/`, keyed by model stamps; the
               `Explorer` context (model, test set, `Latents`) every panel reads
views.py       pure figure and image builders (numpy in, Plotly figure or PNG bytes out)
panels/        one module per page section (see panels/__init__.py)
components/    browser-side components (latent_pad: decoding in the browser while dragging)
"""
