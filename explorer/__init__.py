"""The Streamlit front end. It never imports TensorFlow/Keras directly: it asks `model/` for numpy arrays.

app.py      the page (`main()`), its sections and callbacks
state.py    st.cache_resource / st.cache_data wrappers around `model/`, keyed by model stamps
views.py    pure figure and image builders (numpy in, Plotly figure or PNG bytes out)
retrain.py  the Retrain panel and the first-run screen (background training jobs)
"""
