from .roles import can_write, is_admin, role_of


def roles(request):
    """The signed-in user's role for the navigation, and whether to offer write controls.

    Showing or hiding a control is a courtesy; views still check with write_required.
    """
    return {
        "user_role": role_of(request.user),
        "user_can_write": can_write(request.user),
        "user_is_admin": is_admin(request.user),
    }
