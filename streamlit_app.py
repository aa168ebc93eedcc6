"""Latent explorer: `streamlit run streamlit_app.py`. The page lives in explorer/app.py."""

from explorer.app import main

main()
