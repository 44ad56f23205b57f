"""Sort-of-CLEVR (Santoro et al. 2017, section 4): 75x75 scenes of 6 coloured squares/circles with 11-bit questions.

``data`` generates and caches the data set; ``cli`` registers ``relnet data sort-of-clevr``.
"""
