"""UI: the Gradio app: the Search, Evaluation and Compare tabs and the agent tools."""
