"""Who a person is and what they may do: roles, API tokens and authentication, annotators."""
