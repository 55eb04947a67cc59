"""Model-server backends (Ollama, OpenAI-compatible) behind one interface."""
