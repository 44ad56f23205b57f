"""The showcase: relational QA about a scene of coloured shapes, and the web page that shows the RN at work.

``data`` is the scene/question generator and answer function, ``model`` the state RN with a question LSTM, ``task``
the training-loop task and checkpoint loading, ``server`` the web app, ``cli`` the commands
(``relnet train|eval|data showcase`` and ``relnet showcase``).
"""
