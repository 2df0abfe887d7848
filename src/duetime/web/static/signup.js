import { authForm } from "./auth.js";

authForm("signup-form", "/api/auth/signup", ["email", "password", "invite"]);
