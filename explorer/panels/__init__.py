"""The page's panels, siblings composed in order by explorer/app.py. Each module draws one section
(a `*_panel(ex, ...)` function), keeps its widget keys, reads or writes shared state only through
explorer.session, and keeps its private state beside its code (`session.own("<panel>")`).

  sidebar       model picker, quality and config of the current model, store size, then Retrain
  retrain       the Retrain panel (its form builds a VAEConfig) and the first-run screen
  training_jobs a training job on the page: progress, loss curve, Cancel, notices, the end's follow-up
  downloads     digit PNG under the live digit; test latents CSV and model files in the sidebar
  projection    PCA, t-SNE or UMAP for the scatter above 2-D (returns the explorer to use)
  user_digit    draw or upload your own digit; its star and ellipses on the scatter
  explore       the explore fragment: latent pad or sliders, live digit and map, the scatter
  pick          the picked test image (inside the explore fragment)
  interpolation the interpolation row (inside the explore fragment)
  tools         the analysis tools that follow the pick and the sliders (inside the explore fragment):
                animation, selection, neighbours, traversal, attributes, links; each is a lazy expander
                (`on_change="rerun"`): closed, it costs the slider/click path nothing
  manifold      the decoded grid over a latent plane
  image_map     the test image nearest each cell of an N×N grid over the scatter's plane, beside the
                decoder's view of the same cells (a lazy expander)
  density       the aggregate posterior's density against the prior, its holes decoded (a lazy expander)
  prior         samples from the prior
  quality       IWAE and k-NN of the current model, every stored model side by side
  compare       two models' scatters side by side, linked
  common        small shared helpers (number formatting, lazy expanders, the sliders' z)
"""
